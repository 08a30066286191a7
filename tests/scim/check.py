"""Run scim2-tester, the independent SCIM compliance checker, against the
pocketgate at SCIM_URL with the bearer token in SCIM_TOKEN; exit 1 when any
check reports something other than success or a skip the server's own
ServiceProviderConfig explains (an optional feature it says it lacks)."""

import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

url = os.environ["SCIM_URL"]
token = os.environ["SCIM_TOKEN"]

http = Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
client = SyncSCIMClient(http)
results = check_server(client)

ok = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}
failed = [r for r in results if r.status not in ok]
for r in results:
    mark = "ok  " if r.status in ok else "FAIL"
    print(f"{mark} {r.status.name:<10} {r.resource_type or '-':<6} {r.title}: {r.reason}")
skipped = [r for r in results if r.status == Status.SKIPPED]
print(f"scim2-tester: {len(results)} checks, {len(failed)} failed, {len(skipped)} skipped")
sys.exit(1 if failed or not results else 0)
