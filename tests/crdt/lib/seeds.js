'use strict';
// Which random seeds a test file runs.
//   SEED=n                      run only seed n (reproduce a failure)
//   TANDEM_CRDT_SEEDS=n         scale: the number of seeds of the largest file (default 60)
//   TANDEM_CRDT_SEED_BASE=n     first seed (default 1); "random" picks one and prints it

const DEFAULT_SEEDS = 60;

let base = null;
function seedBase() {
  if (base !== null) return base;
  const env = process.env.TANDEM_CRDT_SEED_BASE;
  if (env === 'random') {
    base = Math.floor(Math.random() * 1e9);
    process.stdout.write(`# TANDEM_CRDT_SEED_BASE=${base}\n`);
  } else {
    base = env ? Number(env) : 1;
  }
  return base;
}

/** Seeds for a file that runs `fraction` of the scale (at least `min`). */
function seeds(fraction = 1, min = 1) {
  if (process.env.SEED) return [Number(process.env.SEED)];
  const scale = process.env.TANDEM_CRDT_SEEDS ? Number(process.env.TANDEM_CRDT_SEEDS) : DEFAULT_SEEDS;
  const n = Math.max(min, Math.round(scale * fraction));
  const b = seedBase();
  return Array.from({ length: n }, (_, i) => b + i);
}

module.exports = { seeds };
