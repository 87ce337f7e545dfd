import { Col, Form, Input, Row, Select } from 'antd'
import { EVENT_TYPES } from './webhook'

/** A webhook endpoint's name, address and events: the same fields to add one or edit it. */
export function EndpointFields() {
  return (
    <Row gutter={16}>
      <Col xs={24} md={6}>
        <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Name the endpoint' }]}>
          <Input placeholder="CRM" maxLength={200} />
        </Form.Item>
      </Col>
      <Col xs={24} md={10}>
        <Form.Item
          label="URL"
          name="url"
          rules={[{ required: true, message: 'Give the address to send to' }]}
          extra="A public http:// or https:// address; private networks are refused."
        >
          <Input placeholder="https://crm.example.com/strata" maxLength={2000} />
        </Form.Item>
      </Col>
      <Col xs={24} md={8}>
        <Form.Item label="Events" name="event_types" extra="None chosen: every event.">
          <Select mode="multiple" allowClear placeholder="Every event" options={EVENT_TYPES} />
        </Form.Item>
      </Col>
    </Row>
  )
}
