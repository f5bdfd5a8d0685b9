import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepTimeline } from '../lib/ddp/reducer';
import { formatSpread, predictedExposedMs, ringMs, separated, spread, timelineBars } from '../lib/lessons/overlap';
import { parseLinkModel, describeLinkModel } from '../lib/ddp/links';
import { tableBundle, timelineChart } from '../lib/plot/index';
import { compileVegaLite } from '../lib/plot/vega';

const link = parseLinkModel('100mbit');
/** Two buckets of 1 MB: one complete at 10 ms, one at the end of the backward pass (50 ms). */
const timeline: StepTimeline = {
  backwardEnd: 50, waitEnd: 200,
  buckets: [{ floats: 250_000, readyAt: 10, startedAt: 10, finishedAt: 90 }, { floats: 250_000, readyAt: 50, startedAt: 90, finishedAt: 170 }],
};

describe('lesson 07: the cost model with overlap', () => {
  it("prices the ring as 2 (N-1) messages of bytes / N over the link", () => {
    assert.equal(ringMs(1e6, 2, link), 2 * (0.5e6 * 8 * 1000) / 1e8); // 80 ms
    assert.equal(ringMs(1e6, 1, link), 0);
    assert.equal(ringMs(1e6, 2, parseLinkModel('100mbit,2ms')), 84);
  });

  it('puts buckets one after another, each no earlier than it is complete, and exposes what ends after the backward pass', () => {
    // Overlap: 10 + 80 = 90, then max(90, 50) + 80 = 170: 120 ms after the backward pass.
    assert.equal(predictedExposedMs(timeline, 2, link, true), 120);
    // Without: both wait for 50 ms: 50 + 80 + 80 = 210, 160 ms exposed.
    assert.equal(predictedExposedMs(timeline, 2, link, false), 160);
  });

  it('claims a difference only between separated ranges of at least two runs', () => {
    assert.equal(separated(spread([1, 2, 3]), spread([4, 5, 6])), true);
    assert.equal(separated(spread([1, 2, 5]), spread([4, 5, 6])), false);
    assert.equal(separated(spread([1]), spread([9])), false);
    assert.equal(formatSpread(spread([1, 2, 3])), '2.0 (1.0-3.0)');
  });

  it('draws the timeline: the training thread and each bucket, a valid Vega-Lite chart', () => {
    const bars = timelineBars(timeline, 'run');
    assert.deepEqual(bars.map((b) => b.lane), ['training thread', 'training thread', 'bucket 0 (1.00 MB)', 'bucket 0 (1.00 MB)', 'bucket 1 (1.00 MB)', 'bucket 1 (1.00 MB)']);
    assert.deepEqual(compileVegaLite(timelineChart({ title: 't', bars })).warnings, []);
  });

  it('reads and describes link models, refusing what it cannot read', () => {
    assert.equal(describeLinkModel(parseLinkModel('1gbit,0.5ms')), '1 Gbit/s each way, 0.5 ms per message');
    assert.throws(() => parseLinkModel('fast'), /--simulated-link takes a rate/);
  });

  it('tables: HTML and text with the same cells', () => {
    const b = tableBundle([{ title: 'a', value: (r: { a: number }) => r.a }, { title: 'b<', value: () => 'x' }], [{ a: 1 }, { a: 2 }], 'cap');
    assert.equal(b['text/plain'], 'cap\na | b<\n1 | x\n2 | x');
    assert.match(b['text/html'] as string, /<th[^>]*>b&lt;<\/th>/);
  });
});
