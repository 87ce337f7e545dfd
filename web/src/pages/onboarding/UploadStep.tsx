import { useState } from 'react'
import { Alert, Button, Form, Select, Space, Typography, Upload } from 'antd'
import { useMutation } from '@tanstack/react-query'
import { count } from '../../ui/format'
import { num, useStats } from './data'
import { inspect, usePresets, type Inspected } from './inspect'

const ACCEPT = '.csv,.tsv,.txt,.gz,.xlsx,.parquet,.jsonl,.ndjson'

/** Step 2: choose a file and how to read it; the server reads it and shows what it found. */
export function UploadStep({
  workspaceId,
  onInspected,
  onSkip,
}: {
  workspaceId: number
  onInspected: (inspected: Inspected) => void
  onSkip: () => void
}) {
  const presets = usePresets(workspaceId)
  const stats = useStats(workspaceId)
  const [preset, setPreset] = useState('auto')
  const send = useMutation({
    mutationFn: (file: File) => inspect(workspaceId, file, { preset }),
    onSuccess: (upload, file) => onInspected({ file, upload }),
  })
  const customers = num(stats.data, 'customers') ?? 0

  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={4} style={{ margin: 0 }}>
        Upload your data
      </Typography.Title>
      <Typography.Text type="secondary">
        A customer list, order lines, an event log, or an export from Shopify or Stripe: CSV
        (also gzipped), Excel, Parquet or JSON Lines, up to 1 GB. Nothing is imported until you
        have checked how Strata reads it.
      </Typography.Text>
      <Form layout="vertical" style={{ maxWidth: 420 }}>
        <Form.Item
          label="Read the file as"
          htmlFor="onboarding-preset"
          extra="Auto recognises the kind of file; choose one if it guesses wrong."
        >
          <Select
            id="onboarding-preset"
            value={preset}
            onChange={setPreset}
            loading={presets.isPending}
            options={[
              { value: 'auto', label: 'Auto: recognise the file' },
              ...(presets.data ?? []).map((p) => ({ value: p.name, label: `${p.name}: ${p.title}` })),
            ]}
          />
        </Form.Item>
      </Form>
      <Upload.Dragger
        accept={ACCEPT}
        multiple={false}
        showUploadList={false}
        disabled={send.isPending}
        // The file goes up through the typed API client, not antd's own request.
        beforeUpload={(file) => {
          send.mutate(file)
          return false
        }}
      >
        <UploadIcon />
        <Typography.Title level={5} style={{ marginTop: 8 }}>
          {send.isPending ? `Reading ${send.variables?.name}…` : 'Drop a file here, or choose one'}
        </Typography.Title>
        <Typography.Text type="secondary">
          CSV, TSV, TXT, Excel (.xlsx), Parquet, JSON Lines; .gz allowed
        </Typography.Text>
      </Upload.Dragger>
      {presets.isError && <Alert type="error" showIcon title={presets.error.message} />}
      {send.isError && (
        <Alert
          type="error"
          showIcon
          title={`Strata could not read ${send.variables?.name}`}
          description={send.error.message}
        />
      )}
      {customers > 0 && (
        <Alert
          type="info"
          title={`This workspace already holds ${count(customers)} customers.`}
          action={<Button onClick={onSkip}>Skip to segmentation</Button>}
        />
      )}
    </Space>
  )
}

function UploadIcon() {
  return (
    <svg
      width="40"
      height="40"
      viewBox="0 0 24 24"
      aria-hidden
      fill="none"
      stroke="#1677ff"
      strokeWidth="1.5"
    >
      <path d="M12 16V4m0 0-4 4m4-4 4 4" strokeLinecap="round" strokeLinejoin="round" />
      <path d="M4 14v4a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-4" strokeLinecap="round" />
    </svg>
  )
}
