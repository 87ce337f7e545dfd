import { AutoComplete, Col, Form, Input, Row, Select } from 'antd'
import type { FormInstance } from 'antd'
import { FORMATS } from './action'
import { useSegments } from '../../ui/workspace'
import { useDestinations } from './hooks'

const KINDS = [
  { value: 'webhook', label: 'Send a webhook' },
  { value: 'email', label: 'Send an e-mail' },
  { value: 'export', label: 'Write an export file' },
  { value: 'tag', label: 'Tag the customer' },
  { value: 'set_attribute', label: 'Set an attribute' },
  { value: 'add_to_segment', label: 'Add to a static segment' },
]

/** The action's kind and its settings, inside an antd Form, under the name `action`. */
export function ActionFields({ workspaceId, form }: { workspaceId: number; form: FormInstance }) {
  const kind = Form.useWatch(['action', 'kind'], form) as string | undefined
  const destinations = useDestinations(workspaceId)
  const segments = useSegments(workspaceId)
  const required = (message: string) => [{ required: true, message }]
  const statics = (segments.data?.items ?? [])
    .filter((s) => s.kind === 'static')
    .map((s) => ({ value: s.name }))

  return (
    <Row gutter={16}>
      <Col xs={24} md={8}>
        <Form.Item label="Action" name={['action', 'kind']} rules={required('Choose what to do')}>
          <Select options={KINDS} placeholder="What to do" />
        </Form.Item>
      </Col>
      {kind === 'webhook' && (
        <Col xs={24} md={16}>
          <Form.Item
            label="Endpoint"
            name={['action', 'destination']}
            rules={required('Choose the endpoint')}
            extra={destinations.webhooks.length === 0 ? 'Add an endpoint on the Webhooks tab first.' : undefined}
          >
            <Select
              placeholder="Webhook endpoint"
              options={destinations.webhooks.map((w) => ({ value: w.id, label: `${w.name} (${w.url})` }))}
            />
          </Form.Item>
        </Col>
      )}
      {kind === 'email' && (
        <>
          <Col xs={24} md={16}>
            <Form.Item
              label="SMTP server"
              name={['action', 'destination']}
              rules={required('Choose the SMTP server')}
              extra={destinations.servers.length === 0 ? 'Add an SMTP server in Settings first.' : undefined}
            >
              <Select
                placeholder="SMTP server"
                options={destinations.servers.map((s) => ({ value: s.id, label: `${s.name} (${s.from_address})` }))}
              />
            </Form.Item>
          </Col>
          <Col xs={24}>
            <Form.Item label="Subject" name={['action', 'subject']} rules={required('Give a subject line')}>
              <Input placeholder="A little something for you, {{ customer.first_name }}" />
            </Form.Item>
            <Form.Item label="Text" name={['action', 'text']} rules={required('Give the plain-text body')}>
              <Input.TextArea rows={4} placeholder="Hi {{ customer.first_name }}, …" />
            </Form.Item>
          </Col>
        </>
      )}
      {kind === 'export' && (
        <Col xs={24} md={16}>
          <Form.Item label="Format" name={['action', 'format']} initialValue="csv">
            <Select options={[...FORMATS]} />
          </Form.Item>
        </Col>
      )}
      {kind === 'tag' && (
        <Col xs={24} md={16}>
          <Form.Item
            label="Tag"
            name={['action', 'tag']}
            rules={required('Name the tag')}
            extra="Sets the attribute tag_NAME to true, usable in rules."
          >
            <Input placeholder="vip" />
          </Form.Item>
        </Col>
      )}
      {kind === 'set_attribute' && (
        <>
          <Col xs={24} md={8}>
            <Form.Item label="Attribute" name={['action', 'attribute']} rules={required('Name the attribute')}>
              <Input placeholder="plan" />
            </Form.Item>
          </Col>
          <Col xs={24} md={8}>
            <Form.Item
              label="Value"
              name={['action', 'value']}
              rules={required('Give the value')}
              extra="true, false and numbers are stored as such."
            >
              <Input placeholder="gold" />
            </Form.Item>
          </Col>
        </>
      )}
      {kind === 'add_to_segment' && (
        <Col xs={24} md={16}>
          <Form.Item
            label="Static segment"
            name={['action', 'segment']}
            rules={required('Name the static segment')}
            extra="A new name makes a new static segment."
          >
            <AutoComplete options={statics} placeholder="Contacted" />
          </Form.Item>
        </Col>
      )}
    </Row>
  )
}
