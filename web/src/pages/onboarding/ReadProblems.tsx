import { Alert, Space, Table, Typography } from 'antd'
import { count } from '../../ui/format'
import type { Upload } from './inspect'

/** What an import of the upload would leave out: rows by reason and the first bad values. */
export function ReadProblems({ upload }: { upload: Upload }) {
  const skipped = Object.entries(upload.rows_skipped)
  const left = skipped.reduce((sum, [, n]) => sum + n, 0)
  if (left === 0 && upload.invalid_values === 0)
    return <Alert type="success" showIcon title={`All ${count(upload.rows)} rows read cleanly.`} />
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Alert
        type="warning"
        showIcon
        title={
          `${count(left)} of ${count(upload.rows)} rows would be left out; ` +
          `${count(upload.invalid_values)} values cannot be read.`
        }
        description={skipped.map(([reason, n]) => `${reason}: ${count(n)} rows`).join(' · ')}
      />
      {upload.errors.length > 0 && (
        <>
          <Typography.Text strong>The first bad values</Typography.Text>
          <Table
            size="small"
            rowKey={(_, i) => String(i)}
            pagination={false}
            dataSource={upload.errors}
            scroll={{ x: 'max-content' }}
            columns={[
              { title: 'Row', dataIndex: 'row', align: 'right' },
              { title: 'Column', dataIndex: 'column' },
              { title: 'Problem', dataIndex: 'reason' },
              { title: 'Value', dataIndex: 'value' },
            ]}
          />
        </>
      )}
    </Space>
  )
}
