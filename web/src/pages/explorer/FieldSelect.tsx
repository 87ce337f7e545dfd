import { useState } from 'react'
import { Select } from 'antd'
import { NUMERIC_FIELDS } from './fields'

/** A numeric customer attribute or trait: one of the known ones, or any name typed in. */
export function FieldSelect({
  value,
  onChange,
  label,
  id,
  width = 240,
}: {
  value?: string
  onChange?: (field: string) => void
  label?: string
  id?: string
  width?: number | string
}) {
  const [search, setSearch] = useState('')
  const typed = search.trim()
  const known = NUMERIC_FIELDS.some((f) => f.value === typed)
  const options = [
    ...NUMERIC_FIELDS.map((f) => ({ value: f.value, label: `${f.label} (${f.value})` })),
    ...(value && !NUMERIC_FIELDS.some((f) => f.value === value) ? [{ value, label: value }] : []),
    ...(typed && !known && typed !== value ? [{ value: typed, label: `Use “${typed}”` }] : []),
  ]
  return (
    <Select
      id={id}
      aria-label={label}
      value={value}
      style={{ width, maxWidth: '100%' }}
      options={options}
      showSearch={{ onSearch: setSearch, optionFilterProp: 'label' }}
      onChange={(field) => {
        setSearch('')
        onChange?.(field)
      }}
    />
  )
}
