import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createDockerAttestor, parseCgroupContainerInfo } from './docker.js';

const ID = 'a3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef012345';
const ID2 = 'b'.repeat(64);
const POD = '0b9c6f7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f';

describe('parseCgroupContainerInfo', () => {
  const cases = [
    {
      name: 'docker on cgroup v1',
      text: `12:memory:/docker/${ID}\n11:cpu,cpuacct:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`,
      want: { containerId: ID },
    },
    {
      name: 'docker on cgroup v2 with the systemd driver',
      text: `0::/system.slice/docker-${ID}.scope\n`,
      want: { containerId: ID },
    },
    {
      name: 'kubernetes with containerd, cgroupfs driver (v1)',
      text: `11:pids:/kubepods/besteffort/pod${POD}/${ID}\n`,
      want: { containerId: ID, podUid: POD },
    },
    {
      name: 'kubernetes with containerd, systemd driver (v2)',
      text: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope\n`,
      want: { containerId: ID, podUid: POD },
    },
    {
      name: 'kubernetes with CRI-O',
      text: `0::/kubepods.slice/kubepods-pod${POD.replaceAll('-', '_')}.slice/crio-${ID}.scope\n`,
      want: { containerId: ID, podUid: POD },
    },
    { name: 'podman (rootful)', text: `0::/machine.slice/libpod-${ID}.scope\n`, want: { containerId: ID } },
    {
      name: 'podman (rootless, nested container cgroup)',
      text: `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container\n`,
      want: { containerId: ID },
    },
    {
      name: 'a pod-level cgroup without a container',
      text: `0::/kubepods/pod${POD}\n`,
      want: { podUid: POD },
    },
    { name: 'a host process (v2)', text: '0::/user.slice/user-0.slice/session-3.scope\n', want: {} },
    { name: 'a host process (v1)', text: '12:memory:/user.slice\n1:name=systemd:/init.scope\n', want: {} },
    {
      name: 'podman conmon, which is not the container',
      text: `0::/machine.slice/libpod-conmon-${ID}.scope\n`,
      want: {},
    },
    { name: 'an id of the wrong length', text: `0::/docker/${ID}0\n`, want: {} },
    { name: 'an uppercase id', text: `0::/docker/${ID.toUpperCase()}\n`, want: {} },
    { name: 'malformed lines', text: 'garbage\n\n:only-one-colon\n', want: {} },
  ];
  for (const tc of cases) {
    it(`reads ${tc.name}`, () => {
      assert.deepEqual(parseCgroupContainerInfo(tc.text), tc.want);
    });
  }

  it('rejects cgroups naming two containers', () => {
    assert.throws(() => parseCgroupContainerInfo(`12:memory:/docker/${ID}\n11:cpu:/docker/${ID2}\n`), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: new RegExp(`cgroups name more than one container \\("${ID}" and "${ID2}"\\)`),
    });
  });

  it('rejects cgroups naming two pods', () => {
    const other = POD.replace('0b9c', 'ffff');
    assert.throws(
      () => parseCgroupContainerInfo(`2:cpu:/kubepods/pod${POD}\n1:pids:/kubepods/pod${other}\n`),
      {
        code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
        message: /more than one pod/,
      },
    );
  });
});

describe('docker attestor', () => {
  it('emits docker:id and k8s:pod-uid selectors from /proc/<pid>/cgroup', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-docker-'));
    try {
      mkdirSync(join(root, '77'));
      writeFileSync(join(root, '77', 'cgroup'), `11:pids:/kubepods/besteffort/pod${POD}/${ID}\n`);
      assert.deepEqual(await createDockerAttestor({ procRoot: root }).attest(77), [
        { type: 'docker', value: `id:${ID}` },
        { type: 'k8s', value: `pod-uid:${POD}` },
      ]);
      await assert.rejects(createDockerAttestor({ procRoot: root }).attest(78), {
        code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
        message: /^workload attestation: cannot read \/proc\/78\/cgroup$/,
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reads this process on this machine without failing', async () => {
    const sels = await createDockerAttestor().attest(process.pid);
    for (const s of sels)
      assert.match(`${s.type}:${s.value}`, /^(docker:id:[0-9a-f]{64}|k8s:pod-uid:[0-9a-f-]{36})$/);
  });
});
