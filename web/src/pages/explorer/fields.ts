// Strata's numeric traits (every workspace has them) and the demo's size attribute. A
// workspace's own numeric attributes (printer_count, seats…) can be typed in: the API
// answers in plain words if the name is not a number it knows.
export const NUMERIC_FIELDS: { value: string; label: string }[] = [
  { value: 'total_revenue', label: 'Revenue, all time' },
  { value: 'total_orders', label: 'Orders, all time' },
  { value: 'average_order_value', label: 'Average order value' },
  { value: 'days_since_last_order', label: 'Days since the last order' },
  { value: 'distinct_products', label: 'Distinct products bought' },
  { value: 'rfm_recency', label: 'RFM recency score' },
  { value: 'rfm_frequency', label: 'RFM frequency score' },
  { value: 'rfm_monetary', label: 'RFM monetary score' },
  { value: 'icp_score', label: 'ICP score' },
  { value: 'company_size', label: 'Company size' },
]

export function fieldLabel(field: string): string {
  return NUMERIC_FIELDS.find((f) => f.value === field)?.label ?? field
}
