"""rowstream's launcher for the moto server: the one place where moto's gaps are fixed.

Started by `npm run local:up` (local/stack.ts) as
    .local/venv/bin/python local/moto/launcher.py --host 127.0.0.1 --port 4566
It serves every moto backend on one port, like `moto_server`, after patching moto 5.2.1 so that
it behaves like AWS where rowstream depends on it. Each fix is listed in FIXES, printed at start,
exposed on GET /moto-api/rowstream/fixes and tested by tests/integration/moto-fixes.test.ts.

`--no-fixes` serves plain moto (used to measure what a fix changes, never by the stack).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import Any

import moto
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PINNED_MOTO = "5.2.1"

FIXES: dict[str, str] = {}


def fix(name: str, description: str):
    """Registers a fix by name (shown at start and on /moto-api/rowstream/fixes)."""

    def register(apply):
        def wrapped() -> None:
            apply()
            FIXES[name] = description

        wrapped.fix_name = name  # type: ignore[attr-defined]
        return wrapped

    return register


# EventBridge state is shared by request threads (the server is threaded) and iterated while
# events are delivered; one re-entrant lock keeps a put_rule from racing a put_events.
EVENTS_LOCK = threading.RLock()


def _locked(method):
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with EVENTS_LOCK:
            return method(*args, **kwargs)

    return wrapper


def _epoch_seconds(value: Any) -> float | None:
    """An EventBridge time as epoch seconds: numbers pass, ISO-8601 strings are parsed."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=parsed.tzinfo or timezone.utc).timestamp()
    return None


def _iso(ts: float) -> str:
    """CloudWatch's timestamp format in alarm events: 2019-10-02T17:04:40.985+0000."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@fix(
    "events-thread-safety",
    "EventBridge calls are serialized: a PutRule during a PutEvents no longer breaks rule iteration",
)
def fix_events_thread_safety() -> None:
    from moto.events.models import EventsBackend

    for name in (
        "put_rule",
        "delete_rule",
        "enable_rule",
        "disable_rule",
        "put_targets",
        "remove_targets",
        "put_events",
        "create_archive",
        "update_archive",
        "delete_archive",
        "start_replay",
        "create_event_bus",
        "delete_event_bus",
    ):
        setattr(EventsBackend, name, _locked(getattr(EventsBackend, name)))


@fix(
    "rule-matching",
    "a rule with only a ScheduleExpression matches no event, and a DISABLED rule delivers nothing",
)
def fix_rule_matching() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if self.state != "ENABLED":
            return
        # moto treats a missing pattern as "match everything"; on AWS a schedule-only rule is
        # triggered by its schedule alone and never by events put on the bus.
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        original(self, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


@fix(
    "sns-target",
    "an SNS topic as a rule target receives the event (moto raised NotImplementedError and failed the whole PutEvents)",
)
def fix_sns_target() -> None:
    from moto.events.models import Rule
    from moto.events.utils import EventTemplateParser
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def is_sns(target: dict[str, Any]) -> bool:
        return parse_arn(target["Arn"]).service == "sns"

    @functools.wraps(original)
    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        sns_targets = [t for t in self.targets if is_sns(t)]
        if not sns_targets:
            original(self, original_event, transform_input)
            return
        # Runs under EVENTS_LOCK (put_events, start_replay): swapping the list is not observable.
        all_targets = self.targets
        self.targets = [t for t in all_targets if not is_sns(t)]
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = all_targets
        if not self.event_pattern.matches_event(original_event):
            return
        for target in sns_targets:
            transformer = target.get("InputTransformer", {})
            payload = (
                EventTemplateParser.parse(
                    input_template=transformer.get("InputTemplate"),
                    input_paths_map=transformer.get("InputPathsMap", {}),
                    event=original_event,
                )
                if transform_input
                else copy.deepcopy(dict(original_event))
            )
            payload.pop("ingestion-time", None)
            if isinstance(payload.get("time"), (int, float)):
                payload["time"] = datetime.fromtimestamp(payload["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            arn = parse_arn(target["Arn"])
            sns_backends[arn.account][arn.region].get_topic(target["Arn"]).publish(json.dumps(payload))

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


@fix(
    "put-events-speed",
    "compiled JSONPath expressions are cached (moto re-parsed them with PLY for every target of every event)",
)
def fix_put_events_speed() -> None:
    import jsonpath_ng.ext

    # EventTemplateParser.parse does `from jsonpath_ng.ext import parse` on every call, so the
    # module attribute is the seam. JSONPath objects are immutable once built: sharing is safe.
    original_parse = jsonpath_ng.ext.parse
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(original_parse)


@fix(
    "s3-notification-version",
    "S3 event notifications carry the object's versionId (versioned buckets) and a sequencer, as on AWS",
)
def fix_s3_notification_version() -> None:
    import itertools
    import time

    import moto.s3.notifications as s3_notifications

    original = s3_notifications._get_s3_event
    counter = itertools.count()

    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event.get("Records", []):
            obj = record["s3"]["object"]
            version_id = getattr(key, "version_id", None)
            if version_id and version_id != "null":
                obj["versionId"] = version_id
            # AWS: hex, increasing per key; consumers compare them to order events of one key.
            obj["sequencer"] = f"{time.time_ns():016X}{next(counter) % 0x10000:04X}"
        return event

    s3_notifications._get_s3_event = get_s3_event


@fix(
    "sqs-send-speed",
    "SendMessage no longer rebuilds every queue attribute (two scans of all messages) to read one flag, "
    "and message visibility checks read the clock cheaply: sends stay O(1) as a queue fills",
)
def fix_sqs_send_speed() -> None:
    import hashlib
    import string
    import time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time_millis as slow_unix_time_millis
    from moto.moto_api._internal import mock_random as random

    def unix_time_millis(dt: Any = None) -> float:
        # moto computes "now" via naive datetimes and a timedelta for every message of every scan.
        return time.time() * 1000.0 if dt is None else slow_unix_time_millis(dt)

    sqs_models.unix_time_millis = unix_time_millis  # type: ignore[assignment]

    # moto 5.2.1's send_message, except for the ContentBasedDeduplication line: it read
    # `queue.attributes`, which computes ApproximateNumberOfMessages* by scanning all messages.
    def send_message(
        self: Any,
        queue_name: str,
        message_body: str,
        message_attributes: dict[str, Any] | None = None,
        delay_seconds: int | None = None,
        deduplication_id: str | None = None,
        group_id: str | None = None,
        system_attributes: dict[str, Any] | None = None,
        validate_group_id: bool = True,
    ) -> Any:
        queue = self.get_queue(queue_name)
        self._validate_message(
            queue,
            message_body=message_body,
            delay_seconds=int(delay_seconds or 0),
            deduplication_id=deduplication_id,
            group_id=group_id,
            validate_group_id=validate_group_id,
        )
        if delay_seconds is not None:
            delay_seconds = int(delay_seconds)
        else:
            delay_seconds = queue.delay_seconds
        message = sqs_models.Message(str(random.uuid4()), message_body, system_attributes)
        if str(getattr(queue, "content_based_deduplication", "false")).lower() == "true":
            message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
        if deduplication_id is not None:
            message.deduplication_id = deduplication_id
            message.sequence_number = "".join(random.choice(string.digits) for _ in range(20))
        if group_id is not None:
            message.group_id = group_id
        if message_attributes:
            message.message_attributes = message_attributes
        if delay_seconds > sqs_models.MAXIMUM_MESSAGE_DELAY:
            raise sqs_models.InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
                "Reason: DelaySeconds must be >= 0 and <= 900."
            )
        message.mark_sent(delay_seconds=delay_seconds)
        queue.add_message(message)
        return message

    sqs_models.SQSBackend.send_message = send_message  # type: ignore[method-assign]


@fix(
    "target-payload",
    "a target without an input transformer receives the whole event as AWS sends it "
    "(with account, and replay-name on replays), not moto's reduced template",
)
def fix_target_payload() -> None:
    from moto.events.utils import EventTemplateParser

    original = EventTemplateParser.parse

    def parse(input_template: Any, input_paths_map: Any, event: Any) -> dict[str, Any]:
        if not input_template and not input_paths_map:
            delivered = copy.deepcopy(dict(event))
            delivered.pop("ingestion-time", None)
            return delivered
        return original(input_template, input_paths_map, event)

    EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign]


@fix(
    "replay-window",
    "StartReplay re-delivers only archived events whose time lies in [EventStartTime, EventEndTime], "
    "only to the destination bus's rules (Destination.FilterArns when given), with replay-name set",
)
def fix_replay_window() -> None:
    from moto.events.models import Replay, ReplayState, events_backends
    from moto.moto_api._internal import mock_random as random
    from moto.core.utils import unix_time

    def replay_events(self: Replay, archive: Any) -> None:
        self.state = ReplayState.RUNNING
        start = _epoch_seconds(self.event_start_time)
        end = _epoch_seconds(self.event_end_time)
        bus_name = self.destination["Arn"].split("/")[-1]
        filter_arns = set(self.destination.get("FilterArns") or [])
        backend = events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(bus_name)
        replayed = 0
        for archived in list(archive.events):
            at = _epoch_seconds(archived.get("time"))
            if at is None or start is None or end is None or at < start or at > end:
                continue
            replayed += 1
            for rule in list(bus.rules.values()):
                if filter_arns and rule.arn not in filter_arns:
                    continue
                event = copy.deepcopy(dict(archived))
                event["id"] = str(random.uuid4())
                event["replay-name"] = self.name
                rule.send_to_targets(event)
        self.replayed_event_count = replayed
        self.state = ReplayState.COMPLETED
        self.end_time = unix_time()

    Replay.replay_events = replay_events  # type: ignore[method-assign]


@fix(
    "alarm-state-change",
    "SetAlarmState puts an aws.cloudwatch 'CloudWatch Alarm State Change' event on the default bus "
    "when the state changes (alarms are still never evaluated from metrics)",
)
def fix_alarm_state_change() -> None:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.events.models import events_backends

    original = CloudWatchBackend.set_alarm_state

    @functools.wraps(original)
    def set_alarm_state(self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        previous = None
        if alarm is not None:
            previous = {
                "value": alarm.state_value,
                "reason": alarm.state_reason,
                "reasonData": alarm.state_reason_data,
                "timestamp": _iso(alarm.state_updated_timestamp.replace(tzinfo=timezone.utc).timestamp()),
            }
            # AWS omits reasonData when there is none (a new alarm's first state); null fails consumers.
            if not previous["reasonData"]:
                del previous["reasonData"]
        original(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if previous is None or previous["value"] == alarm.state_value:
            return
        state: dict[str, Any] = {
            "value": alarm.state_value,
            "reason": alarm.state_reason,
            "timestamp": _iso(alarm.state_updated_timestamp.replace(tzinfo=timezone.utc).timestamp()),
        }
        if alarm.state_reason_data:
            state["reasonData"] = alarm.state_reason_data
        detail = {
            "alarmName": alarm.name,
            "state": state,
            "previousState": previous,
            "configuration": _alarm_configuration(alarm),
        }
        events_backends[self.account_id][self.region_name].put_events(
            [
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": "CloudWatch Alarm State Change",
                    "Detail": json.dumps(detail),
                    "Resources": [alarm.alarm_arn],
                }
            ]
        )
        _run_alarm_actions(alarm, previous["value"], self.account_id, self.region_name)

    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]


def _run_alarm_actions(alarm: Any, old_state: str, account_id: str, region: str) -> None:
    """An alarm's SNS actions for its new state, with the JSON message CloudWatch sends."""
    from moto.sns.models import sns_backends

    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }.get(alarm.state_value) or []
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _iso(alarm.configuration_updated_timestamp.replace(tzinfo=timezone.utc).timestamp())
        if getattr(alarm, "configuration_updated_timestamp", None)
        else None,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _iso(alarm.state_updated_timestamp.replace(tzinfo=timezone.utc).timestamp()),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "Statistic": alarm.statistic,
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
            "Dimensions": [{"name": k, "value": v} for k, v in _dimensions(alarm.dimensions).items()],
        },
    }
    subject = f'{alarm.state_value}: "{alarm.name}" in {region}'[:100]
    for action in actions:
        if not str(action).startswith("arn:aws:sns:"):
            continue
        arn = str(action).split(":")
        try:
            topic = sns_backends[arn[4]][arn[3]].get_topic(str(action))
        except Exception as error:  # a deleted topic: AWS records a failed action, nothing more
            print(f"[rowstream-moto] alarm {alarm.name}: action {action} failed: {error}", file=sys.stderr, flush=True)
            continue
        topic.publish(json.dumps(message), subject=subject)


@fix(
    "sqs-queue-stats",
    "GET /moto-api/rowstream/sqs-queue-stats?queue=<name>&region=<r> answers what CloudWatch's AWS/SQS "
    "metrics would (visible, in flight, delayed, age of the oldest message), which GetQueueAttributes "
    "cannot give: there is no ApproximateAgeOfOldestMessage attribute",
)
def fix_sqs_queue_stats() -> None:
    # The endpoint itself is served by RowstreamApp; registering the fix lists it.
    pass


def _sqs_queue_stats(queue_name: str, region: str) -> dict[str, Any] | None:
    import time

    from moto.sqs.models import sqs_backends

    for account_id in list(sqs_backends.keys()):
        backend = sqs_backends[account_id][region]
        queue = backend.queues.get(queue_name)
        if queue is None:
            continue
        now = time.time() * 1000.0
        messages = list(queue._messages)
        delayed = [m for m in messages if m.delayed]
        in_flight = [m for m in messages if not m.delayed and not m.visible]
        visible = [m for m in messages if not m.delayed and m.visible]
        sent = [m.sent_timestamp for m in messages if not m.delayed and m.sent_timestamp]
        return {
            "queue": queue_name,
            "account": account_id,
            "visible": len(visible),
            "inFlight": len(in_flight),
            "delayed": len(delayed),
            "oldestAgeSeconds": round((now - min(sent)) / 1000.0) if sent else 0,
        }
    return None


def _dimensions(dimensions: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for d in dimensions or []:
        name = getattr(d, "name", None) if not isinstance(d, dict) else d.get("Name")
        value = getattr(d, "value", None) if not isinstance(d, dict) else d.get("Value")
        if name is not None:
            result[name] = value
    return result


def _alarm_configuration(alarm: Any) -> dict[str, Any]:
    """The `configuration` block of AWS's alarm state change event, from moto's Alarm."""
    metrics: list[dict[str, Any]] = []
    if alarm.metric_data_queries:
        for q in alarm.metric_data_queries:
            entry: dict[str, Any] = {"id": q.id, "returnData": str(q.return_data).lower() != "false"}
            if q.label:
                entry["label"] = q.label
            if q.expression:
                entry["expression"] = q.expression
            if q.metric_stat is not None:
                ms = q.metric_stat
                entry["metricStat"] = {
                    "metric": {
                        "namespace": ms.metric.namespace,
                        "name": ms.metric.metric_name,
                        "dimensions": _dimensions(ms.metric.dimensions),
                    },
                    "period": int(ms.period) if ms.period else None,
                    "stat": ms.stat,
                }
                if ms.unit:
                    entry["metricStat"]["unit"] = ms.unit
            metrics.append(entry)
    elif alarm.metric_name:
        metrics.append(
            {
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": alarm.namespace,
                        "name": alarm.metric_name,
                        "dimensions": _dimensions(alarm.dimensions),
                    },
                    "period": alarm.period,
                    "stat": alarm.statistic or alarm.extended_statistic,
                },
                "returnData": True,
            }
        )
    configuration: dict[str, Any] = {"metrics": metrics}
    if alarm.description:
        configuration["description"] = alarm.description
    return configuration


ALL_FIXES = [
    fix_events_thread_safety,
    fix_sns_target,
    fix_rule_matching,
    fix_put_events_speed,
    fix_sqs_send_speed,
    fix_s3_notification_version,
    fix_target_payload,
    fix_replay_window,
    fix_alarm_state_change,
    fix_sqs_queue_stats,
]


class RowstreamApp:
    """moto's dispatcher plus GET /moto-api/rowstream/fixes, which tells the stack what is applied."""

    def __init__(self, inner: DomainDispatcherApplication):
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/moto-api/rowstream/sqs-queue-stats" and "sqs-queue-stats" in FIXES:
            request = Request(environ)
            stats = _sqs_queue_stats(request.args.get("queue", ""), request.args.get("region", "us-east-1"))
            body = json.dumps(stats if stats is not None else {"error": "no such queue"})
            return Response(body, status=200 if stats is not None else 404, mimetype="application/json")(
                environ, start_response
            )
        if environ.get("PATH_INFO") == "/moto-api/rowstream/fixes":
            request = Request(environ)
            body = json.dumps({"moto": moto.__version__, "fixes": FIXES}) if request.method == "GET" else "{}"
            return Response(body, mimetype="application/json")(environ, start_response)
        return self.inner(environ, start_response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--no-fixes", action="store_true", help="serve plain moto (for measurements)")
    parser.add_argument("--log-requests", action="store_true", help="log every request (noisy)")
    args = parser.parse_args(argv)

    # One line per request would grow the log by megabytes during a benchmark.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)

    if moto.__version__ != PINNED_MOTO:
        print(
            f"[rowstream-moto] moto {moto.__version__} is installed but the fixes were written for {PINNED_MOTO}; "
            "run `npm run local:install` (local/moto/requirements.txt pins it)",
            file=sys.stderr,
            flush=True,
        )
        return 2

    if not args.no_fixes:
        for apply in ALL_FIXES:
            apply()

    app = RowstreamApp(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True)

    def stop(signum: int, _frame: Any) -> None:
        print(f"[rowstream-moto] signal {signum}: shutting down", flush=True)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print(f"[rowstream-moto] moto {moto.__version__} on http://{args.host}:{args.port}", flush=True)
    if args.no_fixes:
        print("[rowstream-moto] --no-fixes: plain moto, no rowstream fix applied", flush=True)
    for name, description in FIXES.items():
        print(f"[rowstream-moto] fix {name}: {description}", flush=True)
    server.serve_forever()
    print("[rowstream-moto] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
