import { useEffect, useState } from 'react'
import { useParams } from 'react-router-dom'
import { useMe } from '../../me'

/** The workspace of the address and what the signed-in user may do in it. The API is the
 * judge (it answers 403); this only hides buttons that would be refused. */
export function useWorkspace() {
  const workspaceId = Number(useParams().workspaceId)
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

/** The API's datetimes are UTC without a zone; shown in the reader's time. */
export function when(t: string | null | undefined, fallback = '–'): string {
  if (!t) return fallback
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(t) ? t : `${t.replace(' ', 'T')}Z`)
  return date.toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'short' })
}

export function count(n: number): string {
  return n.toLocaleString('en-US')
}

/** `value`, once it has stopped changing for `ms`: typing in a filter asks the API once. */
export function useSettled<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value)
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms)
    return () => clearTimeout(timer)
  }, [value, ms])
  return settled
}
