import { useState } from 'react'
import { Card, Grid, Progress, Space, Steps, Typography } from 'antd'
import { useSearchParams } from 'react-router-dom'
import { ActionStep } from './onboarding/ActionStep'
import { ImportStep } from './onboarding/ImportStep'
import type { Inspected } from './onboarding/inspect'
import { MappingStep } from './onboarding/MappingStep'
import { SegmentationStep } from './onboarding/SegmentationStep'
import { SegmentsStep } from './onboarding/SegmentsStep'
import { UploadStep } from './onboarding/UploadStep'
import { WorkspaceStep } from './onboarding/WorkspaceStep'
import { useWorkspaceId } from '../ui/workspace'

const STEPS = [
  { key: 'workspace', title: 'Workspace' },
  { key: 'upload', title: 'Upload' },
  { key: 'mapping', title: 'Mapping' },
  { key: 'import', title: 'Import' },
  { key: 'segmentation', title: 'Segmentation' },
  { key: 'segments', title: 'Segments' },
  { key: 'action', title: 'First action' },
] as const
type Step = (typeof STEPS)[number]['key']

/** Get started: from a file to segments and a first campaign or export, step by step. */
export default function OnboardingPage() {
  const workspaceId = useWorkspaceId()
  // A new workspace starts a fresh wizard: nothing of the last one's file carries over.
  return <Wizard key={workspaceId} workspaceId={workspaceId} />
}

function Wizard({ workspaceId }: { workspaceId: number }) {
  const [params, setParams] = useSearchParams()
  const wide = Grid.useBreakpoint().md ?? true
  // The file lives in this tab only; the step and the import job are in the address, so a
  // reload from the import on keeps its place.
  const [inspected, setInspected] = useState<Inspected | null>(null)
  const job = Number(params.get('job')) || null
  const step = reachable(params.get('step'), inspected !== null, job !== null)
  const go = (next: Step, jobId: number | null = job) =>
    setParams(jobId ? { step: next, job: String(jobId) } : { step: next })
  const index = STEPS.findIndex((s) => s.key === step)

  return (
    <Space orientation="vertical" size="large" style={{ width: '100%' }}>
      <div>
        <Typography.Title level={3} style={{ marginBottom: 4 }}>
          Get started
        </Typography.Title>
        <Typography.Text type="secondary">
          Bring in your customers and orders, let Strata segment them, and act on a segment.
        </Typography.Text>
      </div>
      {wide ? (
        <Steps
          current={index}
          size="small"
          onChange={(i) => go(STEPS[i].key)}
          items={STEPS.map((s, i) => ({
            title: s.title,
            // Earlier steps can be gone back to; the mapping needs a file and the import a run.
            disabled:
              i > index ||
              (s.key === 'mapping' && inspected === null) ||
              (s.key === 'import' && job === null),
          }))}
        />
      ) : (
        // Seven steps do not fit a phone's width: where you are, and how far along.
        <div>
          <Typography.Text strong>
            Step {index + 1} of {STEPS.length}: {STEPS[index].title}
          </Typography.Text>
          <Progress
            percent={((index + 1) / STEPS.length) * 100}
            steps={STEPS.length}
            showInfo={false}
            size={{ width: 36, height: 6 }}
            aria-label="Onboarding progress"
          />
        </div>
      )}
      <Card variant="outlined" styles={{ body: { padding: wide ? 24 : 12 } }}>
        {step === 'workspace' && (
          <WorkspaceStep workspaceId={workspaceId} onNext={() => go('upload')} />
        )}
        {step === 'upload' && (
          <UploadStep
            workspaceId={workspaceId}
            onInspected={(next) => {
              setInspected(next)
              go('mapping')
            }}
            onSkip={() => go('segmentation')}
          />
        )}
        {step === 'mapping' && inspected && (
          <MappingStep
            workspaceId={workspaceId}
            inspected={inspected}
            onChange={setInspected}
            onBack={() => go('upload')}
            onImporting={(jobId) => go('import', jobId)}
          />
        )}
        {step === 'import' && job !== null && (
          <ImportStep
            workspaceId={workspaceId}
            jobId={job}
            onRetry={() => go(inspected ? 'mapping' : 'upload', null)}
            onAnother={() => {
              setInspected(null) // an imported upload is gone from the server
              go('upload', null)
            }}
            onNext={() => go('segmentation')}
          />
        )}
        {step === 'segmentation' && (
          <SegmentationStep workspaceId={workspaceId} onNext={() => go('segments')} />
        )}
        {step === 'segments' && (
          <SegmentsStep workspaceId={workspaceId} onNext={() => go('action')} />
        )}
        {step === 'action' && <ActionStep workspaceId={workspaceId} />}
      </Card>
    </Space>
  )
}

/** The step asked for, or the nearest earlier one that can be shown. */
function reachable(asked: string | null, hasFile: boolean, hasJob: boolean): Step {
  const step = STEPS.find((s) => s.key === asked)?.key ?? 'workspace'
  if (step === 'mapping' && !hasFile) return 'upload'
  if (step === 'import' && !hasJob) return 'upload'
  return step
}
