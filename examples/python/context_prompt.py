#!/usr/bin/env python3
"""Ask a running aggregator for the anomaly context of a scope over NATS and
print a prompt block from the typed answer: a decision investigator that is
not written in Rust.

    pip install -r examples/python/requirements.txt
    python3 examples/python/context_prompt.py --nats nats://127.0.0.1:4222 \
        --namespace shop --workload checkout

The protobuf module is generated from proto/inspector/v1/inspector.proto at
start (grpcio-tools bundles protoc), so the script always matches the
repository's wire contract.
"""

import argparse
import asyncio
import importlib
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_proto():
    """Generates inspector_pb2 into a temporary directory and imports it."""
    import grpc_tools
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="inspector-proto-")
    proto_dir = os.path.join(ROOT, "proto")
    includes = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main([
        "protoc",
        f"-I{proto_dir}",
        f"-I{includes}",
        f"--python_out={out}",
        os.path.join(proto_dir, "inspector", "v1", "inspector.proto"),
    ])
    if code != 0:
        sys.exit(f"protoc failed ({code}) on {proto_dir}")
    sys.path.insert(0, out)
    return importlib.import_module("inspector.v1.inspector_pb2")


def finding_line(pb, finding):
    kind = pb.FindingKind.Name(finding.kind).removeprefix("FINDING_KIND_").lower()
    severity = pb.Severity.Name(finding.severity).removeprefix("SEVERITY_").lower()
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(finding.labels.items()))
    series = f"{finding.key}{{{labels}}}" if labels else finding.key
    which = finding.WhichOneof("detail")
    if which == "log_pattern":
        what = f'new log shape "{finding.log_pattern.template}"'
    elif which == "dynamic_anomaly":
        d = finding.dynamic_anomaly
        what = f"{series} = {d.current_value:.4g} vs usual {d.expected_mean:.4g} ({d.deviation_sigma:+.1f} sigma)"
    elif which == "trend_breach":
        t = finding.trend_breach
        what = f"{series} = {t.current_value:.4g}, threshold {t.threshold:.4g}"
    else:
        what = finding.description
    return f"{severity} {kind}: {what}"


def render(pb, context):
    scope = "/".join(x for x in (context.namespace, context.workload) if x) or "the whole cluster"
    lines = [f"Anomalies around {scope} (anomaly context v{context.version}, {context.total_items} findings):"]
    for incident in context.incidents:
        state = pb.IncidentState.Name(incident.state).removeprefix("INCIDENT_STATE_").lower()
        lines.append(f"Incident {incident.id[:8]} ({state}): {incident.title}")
        for member in incident.members:
            lines.append(f"  - {finding_line(pb, member.finding)}")
    for item in context.items:
        match = pb.ScopeMatch.Name(item.scope_match).removeprefix("SCOPE_MATCH_").lower()
        lines.append(f"- [{match}] {finding_line(pb, item.finding)}")
    return "\n".join(lines)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--prefix", default="inspector", help="nats.subject_prefix")
    parser.add_argument("--namespace")
    parser.add_argument("--workload")
    parser.add_argument("--window-seconds", type=int, default=0)
    args = parser.parse_args()

    pb = load_proto()
    import nats

    client = await nats.connect(args.nats)
    try:
        query = pb.ContextQuery(
            namespace=args.namespace or "",
            workload=args.workload or "",
            window_seconds=args.window_seconds,
        )
        reply = await client.request(f"{args.prefix}.query.context", query.SerializeToString(), timeout=10)
    finally:
        await client.close()
    answer = pb.ContextReply.FromString(reply.data)
    if answer.WhichOneof("outcome") == "error":
        sys.exit(f"the aggregator refused the query: {answer.error}")
    print(render(pb, answer.context))


if __name__ == "__main__":
    asyncio.run(main())
