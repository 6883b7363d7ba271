// Orthanc owns its standard output and error: its own log goes there. Node's
// process.stdout and process.stderr would open them as libuv pipes the first time any
// code reads them (a library, the default handler of process warnings), and that turns
// the file descriptors non-blocking for the whole process: Orthanc's log lines are then
// lost whenever the pipe behind them is full. So, before any other module of the bundle
// runs, both become streams into Orthanc's log, and process.stdin an empty stream.
// main.ts imports this module first. Each stream is made when first read: node:stream
// costs Orthanc's start-up ~8 ms, and most runs never write to them.
import type { Readable, Writable } from 'node:stream';

export type StdioSink = (stream: 'stdout' | 'stderr', text: string) => void;

let sink: StdioSink | undefined;
/** Lines written before the sink is known (the modules' own start-up). */
const early: [stream: 'stdout' | 'stderr', text: string][] = [];

/** From now on, what JavaScript writes to stdout and stderr goes to `to`. */
export function sendStdioTo(to: StdioSink): void {
  sink = to;
  for (const [stream, text] of early.splice(0)) to(stream, text);
}

function intoOrthancLog(stream: 'stdout' | 'stderr'): Writable {
  const { Writable } = process.getBuiltinModule('node:stream');
  return new Writable({
    decodeStrings: false,
    write(chunk: Buffer | string, _encoding, done) {
      const text = (typeof chunk === 'string' ? chunk : chunk.toString('utf8')).trimEnd();
      if (text !== '') {
        if (sink === undefined) early.push([stream, text]);
        else sink(stream, text);
      }
      done();
    },
  });
}

function replace(name: 'stdout' | 'stderr' | 'stdin', make: () => Writable | Readable): void {
  let value: Writable | Readable | undefined;
  Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => (value ??= make()) });
}

replace('stdout', () => intoOrthancLog('stdout'));
replace('stderr', () => intoOrthancLog('stderr'));
replace('stdin', () => process.getBuiltinModule('node:stream').Readable.from([]));
