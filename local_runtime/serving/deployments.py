"""Drives blue/green endpoint updates on the local stack as SageMaker's deployment guardrails do.

For an endpoint ``Updating`` with a ``PendingDeploymentSummary`` (UpdateEndpoint with a
DeploymentConfig, see moto_ext/blue_green.py) the driver:

1. provisions the new fleet: loads the new config's model; a model that cannot load fails its
   health check (the container's /ping) and the update fails at once, the old config serving
   throughout;
2. CANARY: sends the canary share of requests to the new fleet for WaitIntervalInSeconds while
   watching the AutoRollbackConfiguration alarms (DescribeAlarms); one in ALARM rolls back;
3. shifts all traffic, watches the alarms for TerminationWaitInSeconds, and completes: the
   endpoint is InService on the new config. A rollback leaves it InService on the old config
   with a FailureReason naming the alarm.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from local_runtime.aws import ACCOUNT_ID
from local_runtime.moto_ext import blue_green
from local_runtime.periodic import PeriodicThread

log = logging.getLogger("local_runtime.deployments")
TICK_SECONDS = 0.2
STOPPED = "the local stack stopped before the bake ended"


@dataclass
class Route:
    """The new fleet and the share of requests it gets."""
    new: object          # LoadedEndpoint
    share: float

    def pick(self, old):
        return self.new if self.share >= 1.0 or random.random() < self.share else old


@dataclass(frozen=True)
class Outcome:
    endpoint: str
    config: str
    succeeded: bool
    reason: str
    seconds: float


def canary_share(policy: dict, instance_count: int) -> float:
    size = policy["CanarySize"]
    return size["Value"] / 100 if size["Type"] == "CAPACITY_PERCENT" else size["Value"] / max(1, instance_count)


class DeploymentDriver(PeriodicThread):
    """Looks for blue/green updates every ``tick_seconds``; drives each in a thread of its own."""
    name = "deployments"

    def __init__(self, clients, server, tick_seconds: float = TICK_SECONDS):
        super().__init__(tick_seconds)
        self.clients = clients
        self.server = server
        self.outcomes: list[Outcome] = []
        self._driving: set[str] = set()
        self._threads: list[threading.Thread] = []

    def final(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)

    def tick(self) -> None:
        """Reads the pending deployments UpdateEndpoint recorded (not ListEndpoints five times a second)."""
        for name, deployment in blue_green.pending_deployments(ACCOUNT_ID, self.clients.region).items():
            if name in self._driving:
                continue
            self._driving.add(name)
            thread = threading.Thread(target=self._drive, args=(name, deployment), name=f"deploy-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _alarm_in_alarm(self, names: list[str]) -> str | None:
        if not names:
            return None
        for alarm in self.clients.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]:
            if alarm["StateValue"] == "ALARM":
                return alarm["AlarmName"]
        return None

    def _bake(self, seconds: float, alarms: list[str]) -> str | None:
        """Waits ``seconds`` while no alarm is in ALARM; what ended the bake early, if anything did: the alarm
        that tripped, or :data:`STOPPED` when the local stack shuts down (an unfinished bake never promotes)."""
        deadline = time.monotonic() + seconds
        while True:
            tripped = self._alarm_in_alarm(alarms)
            if tripped:
                return f"alarm {tripped} went to ALARM"
            if self.stopping:
                return STOPPED
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(self.interval, max(0.0, deadline - time.monotonic())))

    def _drive(self, name: str, deployment) -> None:
        started = time.monotonic()
        config = deployment.deployment_config
        policy = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
        routes = self.server.routes
        try:
            try:
                new = self.server.registry.load_config(name, deployment.new_config)
            except Exception as exc:     # the new fleet never answers /ping
                return self._finish(name, deployment.new_config, False, started,
                                    f"The new endpoint configuration {deployment.new_config} failed its health "
                                    f"check (the model container did not pass /ping: {exc}); the endpoint was "
                                    f"not updated and {deployment.old_config} kept serving all traffic.")
            if policy["Type"] == "CANARY":
                count = sum(int(v.get("InitialInstanceCount", 1)) for v in deployment.variants)
                routes[name] = Route(new, canary_share(policy, count))
                log.info("endpoint %s: canary %.0f%% on %s for %s s", name, 100 * routes[name].share,
                         deployment.new_config, policy["WaitIntervalInSeconds"])
                tripped = self._bake(float(policy["WaitIntervalInSeconds"]), alarms)
                if tripped:
                    routes.pop(name, None)
                    return self._finish(name, deployment.new_config, False, started,
                                        f"Rolled back: {tripped} while the canary of "
                                        f"{deployment.new_config} was baking; {deployment.old_config} serves again.")
            routes[name] = Route(new, 1.0)
            tripped = self._bake(float(config["BlueGreenUpdatePolicy"].get("TerminationWaitInSeconds", 0)), alarms)
            if tripped:
                routes.pop(name, None)
                return self._finish(name, deployment.new_config, False, started,
                                    f"Rolled back: {tripped} after all traffic shifted to "
                                    f"{deployment.new_config}; {deployment.old_config} serves again.")
            self._finish(name, deployment.new_config, True, started, "all traffic shifted")
            self.server.registry.invalidate(name)
            routes.pop(name, None)
        finally:
            self._driving.discard(name)

    def _finish(self, name: str, config: str, succeeded: bool, started: float, reason: str) -> None:
        blue_green.finish(ACCOUNT_ID, self.clients.region, name, succeeded, None if succeeded else reason)
        outcome = Outcome(name, config, succeeded, reason, time.monotonic() - started)
        self.outcomes.append(outcome)
        log.log(logging.INFO if succeeded else logging.WARNING, "endpoint %s deployment of %s %s after %.1f s: %s",
                name, config, "completed" if succeeded else "failed", outcome.seconds, reason)
