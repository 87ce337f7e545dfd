import { useState } from 'react'
import { Alert, Button, Descriptions, Form, Input, Modal, Radio, Segmented, Space, Statistic, Table, Tag, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'
import { Failed } from '../../ui/states'
import { ChangeFailed, Section } from './parts'
import { count, when } from '../../ui/format'
import { useWorkspace } from './common'

type Request = components['schemas']['RequestPublic']
type Kind = 'access' | 'erasure' | 'consent'
type Person = { by: 'email' | 'external_id'; who: string }

const PAGE = 10
const STATUS_COLOR: Record<string, string> = { queued: 'default', running: 'processing', done: 'success', failed: 'error' }
const KINDS: { value: Kind; label: string; what: string }[] = [
  { value: 'access', label: 'Access', what: 'a JSON file of everything held on the person, to send them' },
  {
    value: 'erasure',
    label: 'Erasure',
    what: 'erase the person from every store; later imports and events of them are refused',
  },
  { value: 'consent', label: 'Consent again', what: 'an erased person agreed again: accept their data from now on' },
]

/** Data rights: access and erasure requests with their status and receipts, a form for a
 * new one (an erasure asks for confirmation), and suppressions. */
export default function RightsRequests() {
  const { workspaceId } = useWorkspace()
  const [page, setPage] = useState(1)
  const requests = useQuery({
    queryKey: ['settings-privacy-requests', workspaceId, page],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/privacy/requests', {
          params: { path: { workspace_id: workspaceId }, query: { limit: PAGE, offset: (page - 1) * PAGE } },
        }),
      ),
    // A request runs in the background: follow it until it is done.
    refetchInterval: (query) =>
      query.state.data?.items.some((r) => r.status === 'queued' || r.status === 'running') ? 1500 : false,
  })
  return (
    <Section
      title="Data rights requests"
      intro="Answer a person’s right of access or erasure. A request names the customer by e-mail or by their id in your data; it runs in the background and its receipt counts what was done, store by store."
    >
      <NewRequest />
      {requests.isError && <Failed error={requests.error} />}
      <Table
        rowKey="id"
        loading={requests.isPending}
        dataSource={requests.data?.items ?? []}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No requests yet.' }}
        expandable={{ expandedRowRender: (r) => <Receipt request={r} />, rowExpandable: (r) => !!r.receipt }}
        pagination={{
          current: page,
          pageSize: PAGE,
          total: requests.data?.total ?? 0,
          hideOnSinglePage: true,
          onChange: setPage,
        }}
        columns={[
          { title: 'Request', dataIndex: 'id', render: (id: number) => `#${id}` },
          { title: 'Kind', dataIndex: 'kind', render: (k: string) => <Tag color={k === 'erasure' ? 'red' : 'blue'}>{k}</Tag> },
          {
            title: 'Status',
            dataIndex: 'status',
            render: (s: string, r) => (
              <Space orientation="vertical" size={0}>
                <Tag color={STATUS_COLOR[s]}>{s}</Tag>
                {r.message && <Typography.Text type="secondary">{r.message}</Typography.Text>}
              </Space>
            ),
          },
          { title: 'Asked', dataIndex: 'requested_at', render: (t: string) => when(t) },
          { title: 'Done', dataIndex: 'finished_at', render: (t: string | null) => when(t) },
          {
            title: 'Result',
            key: 'result',
            render: (_, r) =>
              r.has_file ? (
                <Button
                  size="small"
                  href={`/api/v1/workspaces/${workspaceId}/privacy/requests/${r.id}/file`}
                  download
                  aria-label={`Download the file of request ${r.id}`}
                >
                  Download file
                </Button>
              ) : r.receipt ? (
                'see the receipt (expand)'
              ) : (
                '–'
              ),
          },
        ]}
      />
      <Suppressions />
    </Section>
  )
}

/** A receipt: counts per store, and the tools outside Strata the person was sent to. */
function Receipt({ request }: { request: Request }) {
  const receipt = request.receipt ?? {}
  return (
    <Space orientation="vertical" style={{ width: '100%' }}>
      <Descriptions
        size="small"
        bordered
        column={1}
        items={Object.entries(receipt).map(([store, value]) => ({
          key: store,
          label: store,
          children:
            value && typeof value === 'object'
              ? Object.entries(value as Record<string, unknown>)
                  .map(([k, v]) => `${k} ${typeof v === 'number' ? count(v) : JSON.stringify(v)}`)
                  .join(', ') || 'nothing'
              : String(value),
        }))}
      />
      {request.file_sha256 && (
        <Typography.Text type="secondary">
          File SHA-256: <Typography.Text code>{request.file_sha256}</Typography.Text>
        </Typography.Text>
      )}
    </Space>
  )
}

function NewRequest() {
  const { workspaceId } = useWorkspace()
  const client = useQueryClient()
  const [form] = Form.useForm<Person & { kind: Kind }>()
  const kind: Kind = Form.useWatch('kind', form) ?? 'access'
  const by = Form.useWatch('by', form) ?? 'email'
  const [confirming, setConfirming] = useState<Person | null>(null)
  const [done, setDone] = useState<string | null>(null)
  const path = { workspace_id: workspaceId }
  const submit = useMutation({
    mutationFn: async ({ kind, by, who }: Person & { kind: Kind }): Promise<string> => {
      const body = { [by]: who.trim() }
      if (kind === 'consent') {
        const r = await unwrap(api.POST('/api/v1/workspaces/{workspace_id}/privacy/consent', { params: { path }, body }))
        return `Released ${r.released} suppression ${r.released === 1 ? 'entry' : 'entries'}: their data is accepted again.`
      }
      const accepted = await unwrap(
        kind === 'access'
          ? api.POST('/api/v1/workspaces/{workspace_id}/privacy/access', { params: { path }, body })
          : api.POST('/api/v1/workspaces/{workspace_id}/privacy/erasures', { params: { path }, body }),
      )
      return `${kind === 'access' ? 'Access' : 'Erasure'} request #${accepted.request.id} is ${accepted.request.status}; it is listed below.`
    },
    onSuccess: (message) => {
      setDone(message)
      form.resetFields(['who'])
      client.invalidateQueries({ queryKey: ['settings-privacy-requests', workspaceId] })
      client.invalidateQueries({ queryKey: ['settings-suppressions', workspaceId] })
    },
  })
  const send = (values: Person & { kind: Kind }) => {
    setDone(null)
    // Erasure cannot be undone: it asks once more.
    if (values.kind === 'erasure') setConfirming(values)
    else submit.mutate(values)
  }
  return (
    <Form
      form={form}
      layout="vertical"
      initialValues={{ kind: 'access', by: 'email' }}
      onFinish={send}
      style={{ background: '#fafafa', padding: 16, borderRadius: 8 }}
    >
      <Form.Item label="Request" name="kind" extra={KINDS.find((k) => k.value === kind)?.what}>
        <Radio.Group optionType="button" options={KINDS.map(({ value, label }) => ({ value, label }))} />
      </Form.Item>
      <Form.Item label="Find the person by" name="by">
        <Segmented
          options={[
            { value: 'email', label: 'E-mail' },
            { value: 'external_id', label: 'Customer id' },
          ]}
        />
      </Form.Item>
      <Form.Item
        label={by === 'email' ? 'Their e-mail' : 'Their customer id'}
        name="who"
        rules={[{ required: true, whitespace: true, message: 'Name the person.' }]}
        style={{ maxWidth: 420 }}
      >
        <Input autoComplete="off" placeholder={by === 'email' ? 'ada@example.org' : 'C0000042'} />
      </Form.Item>
      <Space orientation="vertical" style={{ width: '100%' }}>
        <Button type="primary" danger={kind === 'erasure'} htmlType="submit" loading={submit.isPending}>
          {kind === 'access' ? 'Export their data' : kind === 'erasure' ? 'Erase this person…' : 'Record consent'}
        </Button>
        {done && <Alert type="success" showIcon title={done} />}
        <ChangeFailed error={submit.error} />
      </Space>
      {confirming && (
        <Modal
          open
          title="Erase this person for good?"
          okText="Erase"
          okButtonProps={{ danger: true }}
          onOk={() => {
            submit.mutate({ kind: 'erasure', ...confirming })
            setConfirming(null)
          }}
          onCancel={() => setConfirming(null)}
        >
          <Typography.Paragraph>
            Every record of <Typography.Text strong>{confirming.who}</Typography.Text> is deleted from the
            warehouse, the catalog, export files and caches. This cannot be undone; data already sent to other
            tools stays there (the receipt lists them).
          </Typography.Paragraph>
        </Modal>
      )}
    </Form>
  )
}

function Suppressions() {
  const { workspaceId } = useWorkspace()
  const suppressed = useQuery({
    queryKey: ['settings-suppressions', workspaceId],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/privacy/suppressions', {
          params: { path: { workspace_id: workspaceId } },
        }),
      ),
  })
  if (!suppressed.data) return null
  return (
    <Space size="large" wrap>
      <Statistic title="Suppressed identifiers" value={count(suppressed.data.total)} />
      {Object.entries(suppressed.data.kinds).map(([kind, k]) => (
        <Statistic
          key={kind}
          title={kind === 'email' ? 'E-mails' : 'Customer ids'}
          value={count(k.count)}
          suffix={k.last ? <Typography.Text type="secondary">last {when(k.last)}</Typography.Text> : undefined}
        />
      ))}
    </Space>
  )
}
