import { useState } from 'react'
import { Alert, Button, Card, Form, Input } from 'antd'
import { useQueryClient } from '@tanstack/react-query'
import { useLocation, useNavigate } from 'react-router-dom'
import { api, problemText } from '../api/client'

export function LoginPage() {
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const queries = useQueryClient()
  const navigate = useNavigate()
  const from = (useLocation().state as { from?: string } | null)?.from ?? '/'

  async function signIn(values: { email: string; password: string }) {
    setBusy(true)
    setError(null)
    const { error: problem } = await api.POST('/api/v1/auth/login', { body: values })
    setBusy(false)
    if (problem) return setError(problemText(problem))
    // Forget the signed-out answer: the next screen asks again, as the signed-in user.
    queries.removeQueries({ queryKey: ['me'] })
    navigate(from, { replace: true })
  }

  return (
    <Card title="Sign in to Strata" style={{ maxWidth: 380, margin: '10vh auto' }}>
      {error && <Alert type="error" title={error} style={{ marginBottom: 16 }} />}
      <Form layout="vertical" onFinish={signIn} requiredMark={false}>
        <Form.Item label="E-mail" name="email" rules={[{ required: true, type: 'email' }]}>
          <Input autoComplete="username" autoFocus />
        </Form.Item>
        <Form.Item label="Password" name="password" rules={[{ required: true }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={busy} block>
          Sign in
        </Button>
      </Form>
    </Card>
  )
}
