// The approval routes, one per kind of object: typed calls chosen by the object's type.
import { api, unwrap } from '../../api/client'

export type ObjectType = 'segment' | 'automation' | 'sync'

export function review(
  workspaceId: number,
  type: ObjectType,
  id: number,
  decision: 'approve' | 'reject',
  note: string | null,
) {
  const body = { note }
  const ws = { workspace_id: workspaceId }
  if (type === 'segment') {
    const path = { ...ws, segment_id: id }
    return unwrap(
      decision === 'approve'
        ? api.POST('/api/v1/workspaces/{workspace_id}/approvals/segments/{segment_id}/approve', { params: { path }, body })
        : api.POST('/api/v1/workspaces/{workspace_id}/approvals/segments/{segment_id}/reject', { params: { path }, body }),
    )
  }
  if (type === 'automation') {
    const path = { ...ws, automation_id: id }
    return unwrap(
      decision === 'approve'
        ? api.POST('/api/v1/workspaces/{workspace_id}/approvals/automations/{automation_id}/approve', {
            params: { path },
            body,
          })
        : api.POST('/api/v1/workspaces/{workspace_id}/approvals/automations/{automation_id}/reject', {
            params: { path },
            body,
          }),
    )
  }
  const path = { ...ws, sync_id: id }
  return unwrap(
    decision === 'approve'
      ? api.POST('/api/v1/workspaces/{workspace_id}/approvals/syncs/{sync_id}/approve', { params: { path }, body })
      : api.POST('/api/v1/workspaces/{workspace_id}/approvals/syncs/{sync_id}/reject', { params: { path }, body }),
  )
}

export function versions(workspaceId: number, type: ObjectType, id: number) {
  const ws = { workspace_id: workspaceId }
  if (type === 'segment')
    return unwrap(
      api.GET('/api/v1/workspaces/{workspace_id}/versions/segments/{segment_id}', {
        params: { path: { ...ws, segment_id: id } },
      }),
    )
  if (type === 'automation')
    return unwrap(
      api.GET('/api/v1/workspaces/{workspace_id}/versions/automations/{automation_id}', {
        params: { path: { ...ws, automation_id: id } },
      }),
    )
  return unwrap(
    api.GET('/api/v1/workspaces/{workspace_id}/versions/syncs/{sync_id}', {
      params: { path: { ...ws, sync_id: id } },
    }),
  )
}

export function diff(workspaceId: number, type: ObjectType, id: number, from: number, to: number) {
  const ws = { workspace_id: workspaceId }
  const query = { from, to }
  if (type === 'segment')
    return unwrap(
      api.GET('/api/v1/workspaces/{workspace_id}/versions/segments/{segment_id}/diff', {
        params: { path: { ...ws, segment_id: id }, query },
      }),
    )
  if (type === 'automation')
    return unwrap(
      api.GET('/api/v1/workspaces/{workspace_id}/versions/automations/{automation_id}/diff', {
        params: { path: { ...ws, automation_id: id }, query },
      }),
    )
  return unwrap(
    api.GET('/api/v1/workspaces/{workspace_id}/versions/syncs/{sync_id}/diff', {
      params: { path: { ...ws, sync_id: id }, query },
    }),
  )
}
