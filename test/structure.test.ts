/**
 * The library's folders import one another one way: the entry points (lib/launch) use training
 * (lib/train), which uses the collectives (lib/ddp); never back.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { it } from 'node:test';

const LIB = path.resolve(__dirname, '..', '..', 'lib');
/** Folder -> the folders it must not import. */
const FORBIDDEN: Record<string, string[]> = {
  ddp: ['train', 'launch', 'lessons', 'plot', 'cli'],
  train: ['launch', 'lessons', 'cli'],
};

it('lib/ddp imports nothing of lib/train or lib/launch, and lib/train nothing of lib/launch', () => {
  const wrong: string[] = [];
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (const file of fs.readdirSync(path.join(LIB, folder)).filter((f) => f.endsWith('.ts'))) {
      const source = fs.readFileSync(path.join(LIB, folder, file), 'utf8');
      for (const m of source.matchAll(/from '\.\.\/([a-z-]+)\//g)) {
        if (forbidden.includes(m[1])) wrong.push(`lib/${folder}/${file} imports lib/${m[1]}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
  assert.ok(fs.readdirSync(path.join(LIB, 'ddp')).includes('reducer.ts'), 'the check reads the right folder');
});

it("the lessons' tables come from lib/plot's tableBundle: no HTML table typed into a cell", () => {
  const notebooks = path.resolve(LIB, '..', 'notebooks');
  const typed: string[] = [];
  let tables = 0;
  for (const file of fs.readdirSync(notebooks).filter((f) => f.endsWith('.ipynb'))) {
    const cells = (JSON.parse(fs.readFileSync(path.join(notebooks, file), 'utf8')) as { cells: { cell_type: string; source: string[] }[] }).cells;
    cells.forEach((cell, i) => {
      const source = cell.source.join('');
      if (cell.cell_type === 'code' && /<t(able|d|h|r)\b/.test(source)) typed.push(`${file} cell ${i}`);
      if (source.includes('tableBundle(')) tables++;
    });
  }
  assert.deepEqual(typed, []);
  assert.ok(tables >= 6, `tableBundle is used ${tables} times: the check reads the notebooks`);
});
