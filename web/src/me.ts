import { useQuery } from '@tanstack/react-query'
import { api } from './api/client'

/** The signed-in user and their workspaces (with their role in each); null if signed out. */
export function useMe() {
  return useQuery({
    queryKey: ['me'],
    queryFn: async () => {
      const { data, response } = await api.GET('/api/v1/auth/me')
      if (response.status === 401) return null
      if (!data) throw new Error(`the server answered ${response.status}`)
      return data
    },
  })
}
