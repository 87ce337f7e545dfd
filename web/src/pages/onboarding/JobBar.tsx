import { Progress, Typography } from 'antd'
import { finished, type Job } from '../../ui/workspace'

/** A running job's bar: how far it is and the stage it is at. */
export function JobBar({ job, label }: { job: Job; label: string }) {
  const percent = Math.round(job.progress * 100)
  return (
    <div>
      <Progress
        percent={percent}
        status={job.status === 'failed' ? 'exception' : finished(job) ? 'success' : 'active'}
        aria-label={label}
      />
      <Typography.Text type="secondary">
        {job.status === 'queued' ? 'Waiting for its turn…' : `${job.stage ?? 'starting'}…`}
      </Typography.Text>
    </div>
  )
}
