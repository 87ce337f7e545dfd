import { Button, type ButtonProps, Popconfirm } from 'antd'

/** A danger button (delete, remove, revoke) that asks first: the question names the thing,
 * the description says what goes with it. */
export function ConfirmButton({
  verb,
  question,
  consequence,
  pending,
  onConfirm,
  ...button
}: {
  verb: string
  question: string
  consequence: string
  pending?: boolean
  onConfirm: () => void
} & Omit<ButtonProps, 'children' | 'danger' | 'loading' | 'onClick'>) {
  return (
    <Popconfirm
      title={question}
      description={consequence}
      okText={verb}
      okButtonProps={{ danger: true }}
      onConfirm={onConfirm}
    >
      <Button danger loading={pending} {...button}>
        {verb}
      </Button>
    </Popconfirm>
  )
}
