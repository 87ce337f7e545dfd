import { useQuery } from '@tanstack/react-query'
import { api, unwrap } from '../../api/client'
import type { components } from '../../api/schema'

export type Upload = components['schemas']['UploadPublic']
export type Preset = components['schemas']['PresetPublic']
/** A file chosen in this tab and what the server read in it. */
export type Inspected = { file: File; upload: Upload }

/** Send the file and see what Strata reads in it (nothing is imported yet). A preset other
 * than auto, or a mapping (a mapping file's text), changes how it is read. */
export function inspect(
  workspaceId: number,
  file: File,
  options: { preset: string; mapping?: string },
): Promise<Upload> {
  return unwrap(
    api.POST('/api/v1/workspaces/{workspace_id}/imports', {
      params: { path: { workspace_id: workspaceId } },
      // The schema types the file part as a string (its bytes); the form carries the File.
      body: { file: file.name, preset: options.preset, mapping: options.mapping },
      bodySerializer: () => {
        const form = new FormData()
        form.append('file', file)
        form.append('preset', options.preset)
        if (options.mapping) form.append('mapping', options.mapping)
        return form
      },
    }),
  )
}

/** The presets a file can be read as, with the fields each one's mapping can name. */
export function usePresets(workspaceId: number) {
  return useQuery({
    queryKey: ['import-presets', workspaceId],
    staleTime: Infinity,
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/workspaces/{workspace_id}/imports/presets', {
          params: { path: { workspace_id: workspaceId } },
        }),
      ),
  })
}
