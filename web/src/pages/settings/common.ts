import { useMe } from '../../me'
import { useWorkspaceId } from '../../ui/workspace'

/** The workspace of the address and what the signed-in user may do in it. The API is the
 * judge (it answers 403); this only hides buttons that would be refused. */
export function useWorkspace() {
  const workspaceId = useWorkspaceId()
  const me = useMe()
  const role = me.data?.workspaces.find((w) => w.id === workspaceId)?.role ?? 'viewer'
  return {
    workspaceId,
    role,
    user: me.data?.user,
    // owners and admins: members, keys, destinations, privacy, audit, approvals
    manages: role === 'owner' || role === 'admin',
    isOwner: role === 'owner',
  }
}
