import { describe, expect, it } from 'vitest';
import { RouteLearner } from '../ingest/transforms/route.ts';
import { generateCorpus, measureAccuracy, shape } from './corpus.ts';

describe('route templating accuracy on a generated corpus', () => {
  it('recovers ≥ 95 % of endpoints exactly and never parameterises a word or version (seed 42, 100 req/endpoint)', () => {
    const learner = new RouteLearner();
    const report = measureAccuracy(generateCorpus(42, 100), (p, h) => learner.template(p, h));
    expect(report.endpoints).toBeGreaterThan(70);
    expect(report.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(report.falseParameters).toEqual([]);
  });

  it('never parameterises a literal even at low volume', () => {
    const learner = new RouteLearner();
    const report = measureAccuracy(generateCorpus(7, 15), (p, h) => learner.template(p, h));
    expect(report.falseParameters).toEqual([]);
  });

  it('shape ignores placeholder names', () => {
    expect(shape('/a/{id}/b/{param}')).toBe('/a/{}/b/{}');
  });
});
