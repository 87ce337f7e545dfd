import { Fragment } from 'react'
import { Button, Checkbox, Flex, Radio, Tag, Typography } from 'antd'
import { ConditionEditor, type Choices } from './ConditionEditor'
import { emptyProperty, group, leaf, type Group, type Node } from './rule'

// Nested groups step in and change tint, so it stays clear which AND / OR a
// condition belongs to.
const TINTS = ['#fafafa', '#f0f5ff', '#f6ffed', '#fff7e6']
const RULES = ['#d9d9d9', '#adc6ff', '#b7eb8f', '#ffd591']

/** A group of conditions joined by AND or OR, with NOT, nested to any depth. `path` numbers
 * its conditions ("Condition 2.1") so each input has a label of its own. */
export function GroupEditor({
  node,
  path,
  depth,
  choices,
  onChange,
  onRemove,
}: {
  node: Group
  path: string
  depth: number
  choices: Choices
  onChange: (next: Node) => void
  onRemove?: () => void
}) {
  const name = path ? `Group ${path}` : 'All conditions'
  const prefix = path ? `${path}.` : ''
  const joiner = node.match === 'and' ? 'AND' : 'OR'
  const setChild = (i: number, next: Node) =>
    onChange({ ...node, children: node.children.map((c, j) => (j === i ? next : c)) })
  const removeChild = (i: number) =>
    onChange({ ...node, children: node.children.filter((_, j) => j !== i) })
  return (
    <Flex
      vertical
      gap={8}
      role="group"
      aria-label={name}
      style={{
        padding: 12,
        background: TINTS[depth % TINTS.length],
        border: `1px solid ${RULES[depth % RULES.length]}`,
        borderLeft: `4px solid ${node.negate ? '#ff4d4f' : RULES[depth % RULES.length]}`,
        borderRadius: 8,
      }}
    >
      <Flex gap={12} wrap align="center" justify="space-between">
        <Flex gap={12} wrap align="center">
          <Typography.Text strong>{node.negate ? 'Customers who do NOT match' : 'Customers who match'}</Typography.Text>
          <Radio.Group
            aria-label={`${name}: match`}
            optionType="button"
            buttonStyle="solid"
            size="small"
            value={node.match}
            onChange={(e) => onChange({ ...node, match: e.target.value })}
            options={[
              { value: 'and', label: 'all (AND)' },
              { value: 'or', label: 'any (OR)' },
            ]}
          />
          <Checkbox checked={node.negate} onChange={(e) => onChange({ ...node, negate: e.target.checked })}>
            NOT (exclude these)
          </Checkbox>
        </Flex>
        {onRemove && (
          <Button size="small" danger onClick={onRemove}>
            Remove group
          </Button>
        )}
      </Flex>
      {node.children.length === 0 && (
        <Typography.Text type="secondary">This group is empty: add a condition or remove it.</Typography.Text>
      )}
      {node.children.map((child, i) => (
        <Fragment key={child.key}>
          {i > 0 && (
            <Tag color={node.match === 'and' ? 'blue' : 'purple'} style={{ alignSelf: 'flex-start' }}>
              {joiner}
            </Tag>
          )}
          {child.kind === 'group' ? (
            <GroupEditor
              node={child}
              path={`${prefix}${i + 1}`}
              depth={depth + 1}
              choices={choices}
              onChange={(next) => setChild(i, next)}
              onRemove={() => removeChild(i)}
            />
          ) : (
            <ConditionEditor
              label={`Condition ${prefix}${i + 1}`}
              condition={child.condition}
              choices={choices}
              onChange={(condition) => setChild(i, { ...child, condition })}
              onRemove={() => removeChild(i)}
            />
          )}
        </Fragment>
      ))}
      <Flex gap={8} wrap>
        <Button
          size="small"
          aria-label={`Add condition to ${name.toLowerCase()}`}
          onClick={() => onChange({ ...node, children: [...node.children, leaf(emptyProperty())] })}
        >
          + Condition
        </Button>
        <Button
          size="small"
          aria-label={`Add group to ${name.toLowerCase()}`}
          onClick={() =>
            onChange({
              ...node,
              children: [...node.children, group(node.match === 'and' ? 'or' : 'and', [leaf(emptyProperty())])],
            })
          }
        >
          + Group
        </Button>
      </Flex>
    </Flex>
  )
}
