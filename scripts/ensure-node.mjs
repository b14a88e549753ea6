// postinstall, step 1: make sure a Node >= 22.14 is at hand (see node-runtime.mjs).
import { execFileSync } from 'node:child_process';
import {
  satisfiesMinimum, selectNode, privateNodePackage, PRIVATE_NODE_VERSION, projectRoot,
} from './node-runtime.mjs';

if (satisfiesMinimum()) process.exit(0);
if (selectNode()) process.exit(0);

const spec = `${privateNodePackage()}@${PRIVATE_NODE_VERSION}`;
console.log(`whittle: Node ${process.versions.node} is older than 22.14; installing ${spec} into .tools/`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
try {
  execFileSync(npm, ['install', '--prefix', '.tools', '--no-save', '--no-package-lock', '--ignore-scripts', spec], {
    cwd: projectRoot, stdio: 'inherit', shell: process.platform === 'win32',
  });
} catch {
  console.error(`whittle: could not install ${spec}. Install Node 22.14 or newer and run npm install again.`);
  process.exit(1);
}
if (!selectNode()) {
  console.error(`whittle: ${spec} installed but its binary is missing. Install Node 22.14 or newer.`);
  process.exit(1);
}
