import { Space } from 'antd'
import SmtpServers from './SmtpServers'
import SyncDestinations from './SyncDestinations'
import { NotAllowed } from './parts'
import { useWorkspace } from './common'

/** Where the workspace's data and e-mail go: SMTP servers and marketing tools. */
export default function DestinationsTab() {
  const { role } = useWorkspace()
  if (role === 'viewer') return (
    <NotAllowed what="see where data is sent" who="owners, admins, analysts and marketers" />
  )
  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <SmtpServers />
      <SyncDestinations />
    </Space>
  )
}
