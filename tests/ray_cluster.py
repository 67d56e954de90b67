"""A two-node Ray cluster on this machine, started with `ray start` as a user would, each node with its own temp
folder and custom resource; stopped by killing exactly the processes it started (never `ray stop`, which ends every
Ray process on the machine, other people's too)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running two-node cluster: its address, the environment that reaches it, its nodes' ids by resource."""

    address: str
    env: dict[str, str]
    root: Path
    node_ids: dict[str, str] = field(default_factory=dict)  # "node_a" / "node_b" -> Ray node id

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: those whose command line names its temp folders, and their children."""
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(str(self.root) in a for a in (p.info["cmdline"] or [])):
                    found[p.pid] = p
                    found.update({c.pid: c for c in p.children(recursive=True)})
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def stop(self) -> None:
        import ray

        ray.shutdown()
        procs = self.processes()
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


def _start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([str(RAY), "start", *args], env=env, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode:
        raise RuntimeError(f"ray start {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-2000:]}")


def start_cluster() -> Cluster:
    """Head (1 CPU, resource node_a) and a second node (1 CPU, resource node_b), both on this machine."""
    # short: Ray's unix sockets live under it, and a socket path may not exceed 107 characters
    root = Path(tempfile.mkdtemp(prefix="hr-", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}", env, root)
    try:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
        _start(["--head", f"--port={port}", "--include-dashboard=false",
                '--resources={"node_a": 1}', f"--temp-dir={root / 'a'}", *common], env)
        _start([f"--address={cluster.address}", '--resources={"node_b": 1}', f"--temp-dir={root / 'b'}", *common], env)
        cluster.node_ids = _wait_for_nodes(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_nodes(cluster: Cluster, timeout: float = 60.0) -> dict[str, str]:
    """Both nodes registered and alive; connects this process (the sweep's driver) to the cluster."""
    import ray

    for key in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED"):
        os.environ[key] = cluster.env[key]
    ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
    deadline = time.monotonic() + timeout
    while True:
        ids = {k: n["NodeID"] for n in ray.nodes() if n["Alive"] for k in ("node_a", "node_b") if k in n["Resources"]}
        if len(ids) == 2:
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(f"the two Ray nodes did not both come up: {ids}")
        time.sleep(0.5)
