import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { loadRuleFiles } from '../../parser/index.ts';

it('inventory rules parse without errors', async () => {
  const r = await loadRuleFiles([fileURLToPath(new URL('./inventory.gwr', import.meta.url))]);
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(r.rules.map((x) => x.id).sort()).toEqual([
    'inventory-first-anonymous-success',
    'inventory-new-api-host',
    'inventory-new-route-template',
  ]);
});
