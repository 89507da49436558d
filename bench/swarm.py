"""Simulated agents for bench/agents.py: each enrolls a target through the real enrollment
protocol and long-polls `GET /api/v1/agent/desired?after=GENERATION` with its own credential,
as `ferry agent` does, reporting every deployment it is asked to run as succeeded (it stages
nothing: it is the server's side of the protocol that is measured), and like `ferry agent`
asks again after a backoff when a report is refused. Every answer naming a
release of the watched application is timestamped, so the benchmark knows when each target
was told.

The loop runs on its own thread; the benchmark drives it with `Swarm.call`.
"""
import asyncio
import re
import threading
import time

import aiohttp

# As `ferry agent`: a long-poll is given up after 40 s (the server answers within 25 s).
POLL_TIMEOUT = aiohttp.ClientTimeout(total=40)


class SimulatedAgent:
    def __init__(self, swarm, name, credential):
        self.swarm = swarm
        self.name = name
        self.headers = {"Authorization": f"Bearer {credential}"}
        self.handled = {}
        self.polls = 0
        self.errors = 0

    async def run(self):
        generation = None
        backoff = 0.2
        session = self.swarm.session
        while not self.swarm.stopping:
            path = "/api/v1/agent/desired" + (f"?after={generation}" if generation is not None else "")
            try:
                async with session.get(self.swarm.url + path, headers=self.headers,
                                       timeout=POLL_TIMEOUT) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{self.name}: {response.status} {await response.text()}")
                    desired = await response.json()
            except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as error:
                if self.swarm.stopping:
                    return
                self.errors += 1
                self.swarm.failed(repr(error))
                await asyncio.sleep(0.2)
                generation = None
                continue
            now = time.monotonic()
            self.polls += 1
            generation = desired["generation"]
            all_reported = True
            for app in desired["apps"]:
                self.swarm.saw(self.name, app.get("version"), now)
                deployment = app.get("deployment")
                if deployment is None or self.handled.get(app["app"]) == (deployment, app.get("version")):
                    continue
                report = {"app": app["app"], "deployment": deployment, "outcome": "succeeded",
                          "current_version": app.get("version"), "version": app.get("version")}
                async with session.post(self.swarm.url + "/api/v1/agent/report", json=report,
                                        headers=self.headers) as response:
                    if response.status != 200:
                        self.errors += 1
                        self.swarm.failed(f"report: {response.status} {await response.text()}")
                        all_reported = False
                        continue
                self.handled[app["app"]] = (deployment, app.get("version"))
            if all_reported:
                backoff = 0.2
            else:
                # As `ferry agent` after a failed report: ask again after a backoff, at
                # once rather than at the next change, and report again.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                generation = None


class Swarm:
    def __init__(self, url, admin_token):
        self.url = url
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.agents = []
        self.tasks = []
        self.stopping = False
        self.last_error = None
        # What failed, by the start of its message: how often.
        self.failures = {}
        # version -> {target: first time a poll answered with it}
        self.told = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session = self.call(self._session())

    async def _session(self):
        # One connection per agent, kept alive between polls, as each `ferry agent` has.
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def failed(self, why):
        self.last_error = why
        kind = re.sub(r"(sim|real)-\d+|deployment \d+", "…", why)[:100]
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def saw(self, target, version, at):
        self.told.setdefault(version, {}).setdefault(target, at)

    async def _enroll_one(self, env, name, gate):
        async with gate:
            async with self.session.post(self.url + "/api/v1/targets/enroll", headers=self.admin,
                                         json={"env": env, "name": name}) as response:
                response.raise_for_status()
                token = (await response.json())["token"]
            async with self.session.post(self.url + "/api/v1/agent/enroll", json={"token": token}) as response:
                response.raise_for_status()
                credential = (await response.json())["credential"]
        return SimulatedAgent(self, name, credential)

    async def _grow(self, env, names):
        gate = asyncio.Semaphore(8)
        agents = await asyncio.gather(*(self._enroll_one(env, name, gate) for name in names))
        self.agents += agents
        self.tasks += [asyncio.ensure_future(agent.run()) for agent in agents]
        while any(agent.polls == 0 for agent in agents):
            await asyncio.sleep(0.05)

    def grow(self, env, names):
        """Enrolls targets `names` in `env` and starts their agents; returns once each has
        had its first answer."""
        self.call(self._grow(env, names))

    def told_times(self, version):
        return dict(self.told.get(version, {}))

    def errors(self):
        return sum(agent.errors for agent in self.agents)

    async def _stop(self):
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()

    def stop(self):
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
