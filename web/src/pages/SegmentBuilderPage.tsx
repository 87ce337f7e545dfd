import { useMemo, useState } from 'react'
import { Alert, Button, Card, Col, Flex, Form, Input, Row, Typography } from 'antd'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, useNavigate, useParams } from 'react-router-dom'
import { api, unwrap } from '../api/client'
import { Query } from '../ui/states'
import type { Choices } from './builder/ConditionEditor'
import { GroupEditor } from './builder/GroupEditor'
import { Preview } from './builder/Preview'
import { countConditions, fromApiRule, gaps, starter, toRule, type Group } from './builder/rule'
import { type Segment, useSegments } from '../ui/workspace'

/** The segment builder: a new rule segment (/segments/new) or an existing one's rule,
 * name and description (/segments/:id/edit), with a live preview of who matches. */
export default function SegmentBuilderPage() {
  const params = useParams()
  const workspaceId = Number(params.workspaceId)
  const segmentId = params.segmentId ? Number(params.segmentId) : null
  const path = { workspace_id: workspaceId }
  const fields = useQuery({
    queryKey: ['rule-fields', workspaceId],
    queryFn: () => unwrap(api.GET('/api/v1/workspaces/{workspace_id}/segments/fields', { params: { path } })),
  })
  const segments = useSegments(workspaceId)
  const existing = useQuery({
    queryKey: ['segment', workspaceId, segmentId],
    enabled: segmentId !== null,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/segments/{segment_id}', {
          params: { path: { ...path, segment_id: segmentId! } },
        }),
      ),
  })
  const ready = {
    isPending: fields.isPending || segments.isPending || (segmentId !== null && existing.isPending),
    isError: fields.isError || segments.isError || existing.isError,
    error: fields.error ?? segments.error ?? existing.error,
    data: fields.data && segments.data ? { fields: fields.data, segments: segments.data.items } : undefined,
  }
  return (
    <Flex vertical gap={16} style={{ width: '100%' }}>
      <div>
        <Link to={segmentId ? `/w/${workspaceId}/segments/${segmentId}` : `/w/${workspaceId}/segments`}>
          ← {existing.data ? existing.data.name : 'Segments'}
        </Link>
        <Typography.Title level={3} style={{ marginTop: 8, marginBottom: 0 }}>
          {segmentId ? 'Edit segment' : 'New segment'}
        </Typography.Title>
      </div>
      <Query query={ready} what="the builder">
        {({ fields, segments }) => {
          const choices: Choices = {
            workspaceId,
            fields,
            // A segment cannot name itself.
            segments: segments.filter((s) => s.id !== segmentId).map((s) => s.name),
          }
          if (existing.data && existing.data.kind !== 'rule') {
            return (
              <Alert
                type="info"
                showIcon
                title={`${existing.data.name} is a ${existing.data.kind} segment made by Strata`}
                description="Only rule segments are edited here. Build a new segment that names it with “Segment membership” instead."
              />
            )
          }
          return (
            <Builder
              key={segmentId ?? 'new'}
              workspaceId={workspaceId}
              segment={existing.data ?? null}
              choices={choices}
            />
          )
        }}
      </Query>
    </Flex>
  )
}

function Builder({
  workspaceId,
  segment,
  choices,
}: {
  workspaceId: number
  segment: Segment | null
  choices: Choices
}) {
  const [tree, setTree] = useState<Group>(() => (segment?.rule ? fromApiRule(segment.rule) : starter()))
  const rule = useMemo(() => toRule(tree), [tree])
  const todo = useMemo(() => gaps(tree), [tree])
  const navigate = useNavigate()
  const queryClient = useQueryClient()
  const path = { workspace_id: workspaceId }
  const save = useMutation({
    mutationFn: (form: { name: string; description?: string }) => {
      const body = { name: form.name.trim(), description: form.description?.trim() || null, rule }
      return segment
        ? unwrap(
            api.PATCH('/api/v1/workspaces/{workspace_id}/segments/{segment_id}', {
              params: { path: { ...path, segment_id: segment.id } },
              body: { ...body, mode: 'replace' },
            }),
          )
        : unwrap(
            api.POST('/api/v1/workspaces/{workspace_id}/segments', {
              params: { path },
              body: { ...body, kind: 'rule' },
            }),
          )
    },
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: ['segments', workspaceId] })
      await queryClient.invalidateQueries({ queryKey: ['segment', workspaceId, saved.id] })
      navigate(`/w/${workspaceId}/segments/${saved.id}`)
    },
  })
  const conditions = countConditions(tree)
  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={15}>
        <Flex vertical gap={16}>
          <Card title="Who is in it" variant="outlined" extra={`${conditions} condition${conditions === 1 ? '' : 's'}`}>
            <GroupEditor
              node={tree}
              path=""
              depth={0}
              choices={choices}
              onChange={(next) => setTree(next as Group)}
            />
          </Card>
          <Card title="Name it and save" variant="outlined">
            <Form
              layout="vertical"
              requiredMark="optional"
              initialValues={{ name: segment?.name ?? '', description: segment?.description ?? '' }}
              onFinish={(form) => save.mutate(form)}
            >
              <Form.Item
                label="Name"
                name="name"
                rules={[{ required: true, whitespace: true, message: 'Give the segment a name.' }]}
              >
                <Input maxLength={200} placeholder="e.g. Repeat buyers in France" />
              </Form.Item>
              <Form.Item label="Description" name="description">
                <Input.TextArea maxLength={2000} autoSize={{ minRows: 2, maxRows: 5 }} placeholder="What this group is for" />
              </Form.Item>
              {save.isError && (
                <Alert type="error" showIcon title={save.error.message} style={{ marginBottom: 16 }} />
              )}
              {todo.length > 0 && (
                <Typography.Paragraph type="secondary">
                  The rule is not complete yet: the preview lists what is left to fill in.
                </Typography.Paragraph>
              )}
              <Flex gap={8} wrap>
                <Button type="primary" htmlType="submit" loading={save.isPending} disabled={todo.length > 0}>
                  {segment ? 'Save changes' : 'Save segment'}
                </Button>
                <Button onClick={() => navigate(-1)}>Cancel</Button>
              </Flex>
              <Typography.Paragraph type="secondary" style={{ marginTop: 12, marginBottom: 0 }}>
                Saving evaluates the segment at once; refreshes keep its members current and
                record who joined and who left.
              </Typography.Paragraph>
            </Form>
          </Card>
        </Flex>
      </Col>
      <Col xs={24} lg={9}>
        <div style={{ position: 'sticky', top: 16 }}>
          <Preview workspaceId={workspaceId} rule={rule} todo={todo} />
        </div>
      </Col>
    </Row>
  )
}
