/**
 * Route templating accuracy: a generated corpus with known templates (inventory/corpus.ts)
 * run through the real ingest `RouteLearner`. Prints the share of endpoints recovered exactly
 * at several traffic volumes, the literal segments wrongly turned into parameters, and every
 * miss.
 *
 *   node bench/route-accuracy.ts [seed] [requestsPerEndpoint]
 */
import { RouteLearner } from '../ingest/transforms/route.ts';
import { generateCorpus, measureAccuracy } from '../inventory/corpus.ts';

const seed = Number(process.argv[2] ?? 42);
const volumes = process.argv[3] ? [Number(process.argv[3])] : [40, 100, 200];
for (const per of volumes) {
  const corpus = generateCorpus(seed, per);
  const learner = new RouteLearner();
  const report = measureAccuracy(corpus, (path, host) => learner.template(path, host));
  console.log(
    `route accuracy: ${report.exact}/${report.endpoints} endpoints exact = ${(report.accuracy * 100).toFixed(1)} % ` +
      `(seed ${seed}, ${per} requests/endpoint, ${corpus.requests.length} requests); ` +
      `literal segments turned into parameters: ${report.falseParameters.length}`,
  );
  for (const f of report.failures)
    console.log(`  MISS ${f.host} ${f.method} ${f.template} -> ${f.got.join(' | ')}`);
  for (const f of report.falseParameters)
    console.log(`  FALSE-PARAM ${f.host} ${f.method} ${f.template} -> ${f.got}`);
}
