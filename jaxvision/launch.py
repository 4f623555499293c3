"""Runs one program as a multi-process JAX job on this machine (loopback): a rehearsal of a TPU
pod slice or a multi-node GPU cluster.

    python -m jaxvision.launch --num-processes 2 --devices-per-process 4 \\
        -m experiments.quickstart --workdir workdirs/quickstart_2x4

Each process gets ``devices-per-process`` virtual CPU devices and joins the job with
``jax.distributed.initialize`` on a free coordinator port of 127.0.0.1 (gloo collectives on
CPU), then runs the module as ``python -m`` would. Their output is streamed line by line with
a ``[p<i>]`` prefix. If any process fails (a non-zero exit code or a signal), the others are
stopped at once (SIGTERM, then SIGKILL after ``--grace`` seconds: a survivor is usually blocked
in a collective with the dead peer and cannot stop by itself) and the launcher exits with the
failing process's code, naming it. SIGINT/SIGTERM to the launcher are passed to every process,
so a job stops gracefully with a checkpoint (rerun the same command to resume).

Inside each process the distributed runtime's heartbeat timeout is ``--heartbeat-timeout``
seconds (JAX's default is 100), so that a job started without this launcher also learns of a
dead peer in seconds.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time

# "<coordinator>,<num_processes>,<process_id>,<heartbeat>,<init timeout>,<shutdown timeout>"
_ENV = "JAXVISION_LAUNCH"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that the OS reports free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stream(index: int, pipe, lock, out) -> None:
    prefix = f"[p{index}] "
    for line in iter(pipe.readline, ""):
        with lock:
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            out.flush()
    pipe.close()


def launch(module: str, args: list[str], *, num_processes: int, devices_per_process: int,
           port: int | None = None, heartbeat_timeout: int = 10, init_timeout: int = 60,
           shutdown_timeout: int = 300, grace: float = 3.0, platform: str = "cpu", out=None) -> int:
    """Runs ``python -m module *args`` as ``num_processes`` processes of one JAX job; returns
    0 when all succeed, else the code of the first process that failed (128 + signal number
    for a signal) after stopping the others."""
    if num_processes < 1 or devices_per_process < 1:
        raise ValueError("--num-processes and --devices-per-process must be >= 1")
    out = out or sys.stdout
    port = port or free_port()
    coordinator = f"127.0.0.1:{port}"
    log_lock = threading.RLock()  # reentrant: the signal handler logs on the main thread

    def say(message: str) -> None:
        with log_lock:
            out.write(f"[launch] {message}\n")
            out.flush()

    base_env = {k: v for k, v in os.environ.items()
                if k not in ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES")}
    if platform:
        base_env["JAX_PLATFORMS"] = platform
    if platform == "cpu":
        base_env["JAX_NUM_CPU_DEVICES"] = str(devices_per_process)
    base_env.setdefault("PYTHONUNBUFFERED", "1")
    processes, threads = [], []
    say(f"{num_processes} processes x {devices_per_process} devices, coordinator {coordinator}: "
        f"python -m {module} {' '.join(args)}")
    for index in range(num_processes):
        env = dict(base_env, **{_ENV: f"{coordinator},{num_processes},{index},"
                                      f"{heartbeat_timeout},{init_timeout},{shutdown_timeout}"})
        process = subprocess.Popen(
            [sys.executable, "-m", "jaxvision.launch", "--worker", "-m", module, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)  # our signals reach it only through us
        processes.append(process)
        say(f"process {index}: pid {process.pid}")
        thread = threading.Thread(target=_stream, args=(index, process.stdout, log_lock, out),
                                  daemon=True)
        thread.start()
        threads.append(thread)

    forwarded: list[int] = []

    def forward(signum, frame):  # noqa: ARG001
        forwarded.append(signum)
        say(f"received {signal.Signals(signum).name}; passing it to every process")
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    exits: list[tuple[int, int]] = []  # (index, code) in the order the processes ended

    def watch(index: int) -> None:
        code = processes[index].wait()
        with log_lock:
            exits.append((index, code))

    for index in range(num_processes):
        threading.Thread(target=watch, args=(index,), daemon=True).start()
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    failed: tuple[int, int] | None = None
    try:
        while True:
            with log_lock:
                ended = list(exits)
            bad = [(i, c) for i, c in ended if c != 0]  # the first to fail is the cause
            if bad and failed is None:
                failed = bad[0]
                index, code = failed
                if forwarded:  # the job is stopping on our signal: let each save and exit
                    say(f"process {index} (pid {processes[index].pid}) {_describe(code)}")
                else:
                    say(f"process {index} (pid {processes[index].pid}) {_describe(code)}; "
                        "stopping the others")
                    _stop(processes, grace)
            if len(ended) == num_processes:
                break
            time.sleep(0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop(processes, grace)  # only if we are leaving on an exception
        for thread in threads:
            thread.join(timeout=5)
    if failed is None:
        say("all processes exited with code 0")
        return 0
    index, code = failed
    others = ", ".join(f"p{i}: {_describe(p.returncode)}" for i, p in enumerate(processes)
                       if i != index)
    say(f"job failed: process {index} {_describe(code)}" + (f" ({others})" if others else ""))
    return 128 - code if code < 0 else code


def _stop(processes: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to the live processes (and their children), SIGKILL to those alive after
    ``grace`` seconds."""
    live = [p for p in processes if p.poll() is None]
    for p in live:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in live) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in live:
        if p.poll() is None:
            _signal_group(p, signal.SIGKILL)
        p.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the process leads its own session
    except ProcessLookupError:
        pass


def initialize_from_environment() -> bool:
    """In a process started by ``launch``: ``jax.distributed.initialize`` with the launcher's
    coordinator, process count and id, and short heartbeats. Returns False elsewhere."""
    spec = os.environ.get(_ENV)
    if not spec:
        return False
    coordinator, num_processes, process_id, heartbeat, init_timeout, shutdown = spec.split(",")
    import jax

    jax.distributed.initialize(coordinator, num_processes=int(num_processes),
                               process_id=int(process_id), cluster_detection_method="deactivate",
                               initialization_timeout=int(init_timeout),
                               heartbeat_timeout_seconds=int(heartbeat),
                               shutdown_timeout_seconds=int(shutdown))
    return True


def _worker(module: str, args: list[str]) -> None:
    """Runs ``module`` as ``__main__`` in a process of the job. A failing process exits at
    once, skipping the distributed runtime's shutdown barrier (which would wait for peers that
    may be blocked on it), so that the launcher learns of the failure in milliseconds."""
    initialize_from_environment()
    sys.argv = [module, *args]
    try:
        if module.endswith(".py"):  # a script's path
            runpy.run_path(module, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code
        if code in (None, 0):
            return
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        _exit_now(code)
    except BaseException:  # noqa: BLE001 - any failure ends this process of the job
        import traceback

        traceback.print_exc()
        _exit_now(1)


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxvision.launch",
        description="Run a jaxvision program as a multi-process JAX job on this machine.")
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=1,
                        help="virtual CPU devices per process (JAX_NUM_CPU_DEVICES)")
    parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
    parser.add_argument("--heartbeat-timeout", type=int, default=10,
                        help="seconds after which the job declares a silent process dead")
    parser.add_argument("--init-timeout", type=int, default=60,
                        help="seconds to wait for every process to join the job")
    parser.add_argument("--shutdown-timeout", type=int, default=300,
                        help="seconds a process that ended well waits for the others to end")
    parser.add_argument("--grace", type=float, default=3.0,
                        help="seconds between SIGTERM and SIGKILL when stopping survivors")
    parser.add_argument("--platform", default="cpu",
                        help="JAX_PLATFORMS for the processes ('' keeps the environment's)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-m", dest="module", metavar="MODULE ARGS...", required=True,
                        help="the module (or a .py file) to run, then its own arguments")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `-m MODULE` belongs to the module.
    cut = argv.index("-m") + 2 if "-m" in argv else len(argv)
    options = parser.parse_args(argv[:cut])
    args = argv[cut:]
    if options.worker:
        _worker(options.module, args)
        return 0
    return launch(options.module, args, num_processes=options.num_processes,
                  devices_per_process=options.devices_per_process, port=options.port or None,
                  heartbeat_timeout=options.heartbeat_timeout, init_timeout=options.init_timeout,
                  shutdown_timeout=options.shutdown_timeout,
                  grace=options.grace, platform=options.platform)


if __name__ == "__main__":
    sys.exit(main())
