import { useState } from 'react'
import {
  Alert,
  Button,
  Checkbox,
  Col,
  Collapse,
  Descriptions,
  Grid,
  Row,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd'
import type { TableColumnsType } from 'antd'
import { useMutation } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { Failed, Loading } from '../../ui/states'
import { count, percent } from '../../ui/format'
import { field } from './data'
import { inspect, usePresets, type Inspected, type Preset, type Upload } from './inspect'
import { ReadProblems } from './ReadProblems'

type FieldInfo = Preset['fields'][number]
type Columns = Record<string, string | null>

/** Step 3: what each field is read from, its type and sample values; change a column or
 * the preset, check again, then import. */
export function MappingStep({
  workspaceId,
  inspected,
  onChange,
  onBack,
  onImporting,
}: {
  workspaceId: number
  inspected: Inspected
  onChange: (next: Inspected) => void
  onBack: () => void
  onImporting: (jobId: number) => void
}) {
  const presets = usePresets(workspaceId)
  if (presets.isError) return <Failed error={presets.error} />
  if (presets.isPending) return <Loading what="the presets" />
  return (
    <MappingEditor
      // A new reading of the file starts from what the server detected.
      key={inspected.upload.id}
      workspaceId={workspaceId}
      inspected={inspected}
      presets={presets.data}
      onChange={onChange}
      onBack={onBack}
      onImporting={onImporting}
    />
  )
}

function MappingEditor({
  workspaceId,
  inspected,
  presets,
  onChange,
  onBack,
  onImporting,
}: {
  workspaceId: number
  inspected: Inspected
  presets: Preset[]
  onChange: (next: Inspected) => void
  onBack: () => void
  onImporting: (jobId: number) => void
}) {
  const { file, upload } = inspected
  const detected = detectedColumns(upload)
  const [preset, setPreset] = useState(upload.preset)
  const [columns, setColumns] = useState<Columns>(detected)
  const [strict, setStrict] = useState(false)
  const changedPreset = preset !== upload.preset
  const changed =
    changedPreset ||
    Object.keys({ ...detected, ...columns }).some(
      (f) => (columns[f] ?? null) !== (detected[f] ?? null),
    )

  const recheck = useMutation({
    mutationFn: () =>
      // A new preset detects its own columns; the same preset keeps the columns chosen here.
      inspect(
        workspaceId,
        file,
        changedPreset ? { preset } : { preset, mapping: mappingText(upload, columns) },
      ),
    onSuccess: (next) => onChange({ file, upload: next }),
  })
  const confirm = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/workspaces/{workspace_id}/imports/{upload_id}/confirm', {
          params: { path: { workspace_id: workspaceId, upload_id: upload.id } },
          body: { strict, dry_run: false },
        }),
      ),
    onSuccess: (job) => onImporting(job.id),
  })
  const spec = presets.find((p) => p.name === upload.preset)
  const listed = (spec?.fields ?? []).filter((f) => f.required || f.name in columns)
  const addable = (spec?.fields ?? []).filter((f) => !f.required && !(f.name in columns))
  const used = new Set(Object.values(columns).filter((c): c is string => c !== null))
  const unused = upload.columns.filter((c) => !used.has(c.column))

  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={4} style={{ margin: 0 }}>
        Check how Strata reads {upload.file_name}
      </Typography.Title>
      <Descriptions
        bordered
        size="small"
        column={{ xs: 1, sm: 2, lg: 4 }}
        items={[
          {
            key: 'as',
            label: 'Read as',
            children: `${upload.preset_title} (${percent(upload.confidence, 0)} sure)`,
          },
          { key: 'rows', label: 'Rows', children: count(upload.rows) },
          {
            key: 'target',
            label: 'Rows become',
            children: upload.target === 'customers' ? 'customers' : 'orders and events',
          },
          { key: 'encoding', label: 'Encoding', children: upload.encoding },
        ]}
      />
      {upload.warnings.map((w) => (
        <Alert key={w} type="warning" showIcon title={w} />
      ))}
      <Row gutter={[16, 8]} align="bottom">
        <Col xs={24} md={10}>
          <label htmlFor="mapping-preset">
            <Typography.Text strong>Preset</Typography.Text>
          </label>
          <Select
            id="mapping-preset"
            style={{ width: '100%', marginTop: 4 }}
            value={preset}
            onChange={setPreset}
            options={presets.map((p) => ({ value: p.name, label: `${p.name}: ${p.title}` }))}
          />
        </Col>
        <Col xs={24} md={14}>
          <Select
            aria-label="Map another field"
            placeholder="Map another field…"
            style={{ width: '100%' }}
            value={null}
            disabled={changedPreset || addable.length === 0}
            onChange={(name: string) => setColumns({ ...columns, [name]: null })}
            options={addable.map((f) => ({ value: f.name, label: `${f.name}: ${f.help}` }))}
          />
        </Col>
      </Row>
      {changedPreset ? (
        <Alert
          type="info"
          showIcon
          title={`Check again to see how ${
            presets.find((p) => p.name === preset)?.title ?? preset
          } reads the file.`}
        />
      ) : (
        <FieldTable
          fields={listed}
          columns={columns}
          upload={upload}
          onPick={(name, column) => setColumns({ ...columns, [name]: column })}
        />
      )}
      {!changedPreset && unused.length > 0 && (
        <Typography.Text type="secondary">
          {upload.preset === 'events' ? 'Kept as event properties' : 'Not imported'}:{' '}
          {unused.map((c) => c.column).join(', ')}
        </Typography.Text>
      )}
      {recheck.isError && (
        <Alert
          type="error"
          showIcon
          title="Strata cannot read the file this way"
          description={recheck.error.message}
        />
      )}
      <ReadProblems upload={upload} />
      <Collapse
        items={[
          {
            key: 'preview',
            label: `The first ${upload.preview_mapped.length} rows as Strata will store them`,
            children: <Preview rows={upload.preview_mapped} />,
          },
        ]}
      />
      <Checkbox checked={strict} onChange={(e) => setStrict(e.target.checked)}>
        Refuse the whole file if any value is bad (otherwise bad rows are left out and listed)
      </Checkbox>
      {confirm.isError && <Alert type="error" showIcon title={confirm.error.message} />}
      <Space wrap>
        <Button onClick={onBack}>Choose another file</Button>
        {changed ? (
          <Button type="primary" loading={recheck.isPending} onClick={() => recheck.mutate()}>
            Check again
          </Button>
        ) : (
          <Button type="primary" loading={confirm.isPending} onClick={() => confirm.mutate()}>
            Import {count(upload.rows)} rows
          </Button>
        )}
      </Space>
    </Space>
  )
}

/** One row per field: the column it is read from, its type, how sure the detection is,
 * the column's first values and the first value as stored. */
function FieldTable({
  fields,
  columns,
  upload,
  onPick,
}: {
  fields: FieldInfo[]
  columns: Columns
  upload: Upload
  onPick: (field: string, column: string | null) => void
}) {
  const wide = Grid.useBreakpoint().md ?? true
  const detected = detectedColumns(upload)
  const sampleOf = (f: FieldInfo) => {
    const column = columns[f.name]
    return column ? samples(upload.preview, column).join(' · ') || '(empty)' : ''
  }
  const storedOf = (f: FieldInfo) =>
    columns[f.name] && columns[f.name] === detected[f.name] ? storedAs(upload, f.name) : ''
  const detection = (f: FieldInfo) => {
    const column = columns[f.name]
    if (!column) return <Typography.Text type="secondary">–</Typography.Text>
    if (column !== detected[f.name]) return <Tag color="purple">your choice</Tag>
    const sure = upload.columns.find((c) => c.column === column)?.confidence ?? 1
    const color = sure >= 0.9 ? 'green' : sure >= 0.6 ? 'gold' : 'red'
    return <Tag color={color}>{percent(sure, 0)} sure</Tag>
  }
  const name = (f: FieldInfo) => (
    <Space size={4} wrap>
      <Typography.Text code>{f.name}</Typography.Text>
      {f.required && <Tag color="blue">required</Tag>}
      {!wide && <Tag>{f.type}</Tag>}
    </Space>
  )
  const picker = (f: FieldInfo) => (
    <Select
      aria-label={`Column for ${f.name}`}
      style={{ minWidth: wide ? 180 : 110 }}
      allowClear={!f.required}
      placeholder="Not in the file"
      value={columns[f.name] ?? null}
      onChange={(column: string | undefined) => onPick(f.name, column ?? null)}
      options={upload.columns.map((c) => ({ value: c.column, label: c.column }))}
    />
  )
  const columnsWide: TableColumnsType<FieldInfo> = [
    {
      title: 'Field',
      key: 'field',
      render: (_, f) => (
        <Space orientation="vertical" size={0}>
          {name(f)}
          <Typography.Text type="secondary">{f.help}</Typography.Text>
        </Space>
      ),
    },
    { title: 'Type', dataIndex: 'type', render: (type: string) => <Tag>{type}</Tag> },
    { title: 'Column in the file', key: 'column', render: (_, f) => picker(f) },
    { title: 'Detected', key: 'confidence', render: (_, f) => detection(f) },
    { title: 'Sample values', key: 'sample', render: (_, f) => sampleOf(f) },
    { title: 'Stored as', key: 'stored', render: (_, f) => storedOf(f) },
  ]
  // At phone width two columns: the field with all it says, and the column to read it from.
  const columnsNarrow: TableColumnsType<FieldInfo> = [
    {
      title: 'Field',
      key: 'field',
      render: (_, f) => (
        <Space orientation="vertical" size={2}>
          {name(f)}
          <Typography.Text type="secondary">{f.help}</Typography.Text>
          {sampleOf(f) && <Typography.Text>e.g. {sampleOf(f)}</Typography.Text>}
          {detection(f)}
        </Space>
      ),
    },
    { title: 'Column', key: 'column', render: (_, f) => picker(f) },
  ]
  return (
    <Table
      rowKey="name"
      size="small"
      pagination={false}
      dataSource={fields}
      // At phone width the two columns fit and wrap; wider, the table may scroll inside.
      scroll={wide ? { x: 'max-content' } : undefined}
      aria-label="Field mapping"
      columns={wide ? columnsWide : columnsNarrow}
    />
  )
}

function Preview({ rows }: { rows: Upload['preview_mapped'] }) {
  const keys = rows.length > 0 ? Object.keys(rows[0]) : []
  return (
    <Table
      size="small"
      rowKey={(_, i) => String(i)}
      pagination={false}
      dataSource={rows}
      scroll={{ x: 'max-content' }}
      columns={keys.map((k) => ({ title: k, dataIndex: k, render: (v: unknown) => shown(v) }))}
    />
  )
}

/** field → column, as the server detected it. */
function detectedColumns(upload: Upload): Columns {
  const fields = field(upload.mapping, 'fields')
  const out: Columns = {}
  if (fields && typeof fields === 'object')
    for (const [name, column] of Object.entries(fields)) if (typeof column === 'string') out[name] = column
  return out
}

/** The upload's mapping with the columns chosen here, as a mapping file's JSON. */
function mappingText(upload: Upload, columns: Columns): string {
  const fields = Object.fromEntries(Object.entries(columns).filter(([, c]) => c !== null))
  return JSON.stringify({ ...upload.mapping, fields })
}

/** The column's first distinct values in the preview. */
function samples(rows: Upload['preview'], column: string): string[] {
  const values = rows.map((r) => shown(r[column])).filter((v) => v !== '')
  return [...new Set(values)].slice(0, 3)
}

/** The field's first value as the import will store it (the customer id is external_id). */
function storedAs(upload: Upload, name: string): string {
  const key = name === 'customer_id' ? 'external_id' : name
  const row = upload.preview_mapped.find((r) => r[key] !== null && r[key] !== undefined)
  return row ? shown(row[key]) : ''
}

function shown(value: unknown): string {
  if (value === null || value === undefined) return ''
  return typeof value === 'object' ? JSON.stringify(value) : String(value)
}
