import { Alert, Button, Popconfirm, Space, Typography } from 'antd'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import { when } from '../../ui/format'
import type { ShownSecret, Webhook } from './webhook'
import type { Notice } from './shared'
import { ConfirmButton } from '../../ui/ConfirmButton'

/** The signing secret, with a copy button; once this is closed it cannot be seen again. */
export function SecretShownOnce({ shown, onClose }: { shown: ShownSecret; onClose: () => void }) {
  return (
    <Alert
      type="warning"
      showIcon
      title={`Signing secret of ${shown.name}: copy it now, it is not shown again`}
      description={
        <Space orientation="vertical" style={{ width: '100%' }}>
          <Typography.Text code copyable={{ text: shown.secret }} aria-label="Signing secret">
            {shown.secret}
          </Typography.Text>
          {shown.oldUntil && (
            <Typography.Text type="secondary">
              The previous secret also signs until {when(shown.oldUntil)}, so receivers can switch
              over.
            </Typography.Text>
          )}
          <Button onClick={onClose}>I have saved it</Button>
        </Space>
      }
    />
  )
}

/** Send a test, pause or resume, rotate the secret, remove: the same on the list and on an
 * endpoint's own page. Each change refreshes every view of the endpoints. */
export function WebhookButtons({
  workspaceId,
  hook,
  onSecret,
  onNotice,
  onRemoved,
}: {
  workspaceId: number
  hook: Webhook
  onSecret: (shown: ShownSecret) => void
  onNotice: (notice: Notice) => void
  onRemoved?: () => void
}) {
  const client = useQueryClient()
  const path = { workspace_id: workspaceId, destination_id: hook.id }
  const refresh = () => client.invalidateQueries({ queryKey: ['webhooks', workspaceId] })
  const fail = (error: Error) => onNotice({ type: 'error', text: error.message })

  const test = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/test', { params: { path } })),
    onSuccess: () => {
      onNotice({ type: 'success', text: `A test message is on its way to ${hook.name}.` })
      return refresh()
    },
    onError: fail,
  })
  const toggle = useMutation({
    mutationFn: () =>
      hook.status === 'active'
        ? unwrap(api.POST('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/disable', { params: { path } }))
        : unwrap(api.POST('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/enable', { params: { path } })),
    onSuccess: refresh,
    onError: fail,
  })
  const rotate = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}/rotate-secret', { params: { path } })),
    onSuccess: (rotated) =>
      onSecret({ name: hook.name, secret: rotated.secret, oldUntil: rotated.previous_secret_expires_at }),
    onError: fail,
  })
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/api/v1/workspaces/{workspace_id}/webhooks/{destination_id}', { params: { path } })),
    onSuccess: async () => {
      onRemoved?.()
      await refresh()
    },
    onError: fail,
  })

  return (
    <Space wrap size="small">
      <Button size="small" loading={test.isPending} onClick={() => test.mutate()}>
        Send test
      </Button>
      <Button size="small" loading={toggle.isPending} onClick={() => toggle.mutate()}>
        {hook.status === 'active' ? 'Disable' : 'Enable'}
      </Button>
      <Popconfirm
        title="Rotate the signing secret?"
        description="The old secret keeps signing for 24 hours."
        okText="Rotate"
        onConfirm={() => rotate.mutate()}
      >
        <Button size="small" loading={rotate.isPending}>
          Rotate secret
        </Button>
      </Popconfirm>
      <ConfirmButton
        verb="Remove"
        question={`Remove ${hook.name}?`}
        consequence="Its messages and delivery log go with it."
        onConfirm={() => remove.mutate()}
        size="small"
        pending={remove.isPending}
      />
    </Space>
  )
}
