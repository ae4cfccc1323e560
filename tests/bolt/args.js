'use strict';
// Shared by the fixture scripts: `--name value` / `--flag` arguments, and a logger that keeps
// sofa-rpc-node's info chatter off stdout (stdout carries the scripts' one-line results).

exports.parseArgs = (argv, defaults) => {
  const out = Object.assign({}, defaults);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error('unexpected argument: ' + arg);
    const name = arg.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) {
      out[name] = true;
    } else {
      out[name] = next;
      i++;
    }
  }
  return out;
};

const noop = () => {};
exports.quietLogger = {
  debug: noop,
  info: noop,
  warn: (...a) => { if (process.env.BOLT_FIXTURE_DEBUG) console.error(...a); },
  error: (...a) => { if (process.env.BOLT_FIXTURE_DEBUG) console.error(...a); },
};
