"""verl reward function backed by `harness serve --reward`.

verl calls a custom reward function with the row's data source, the decoded response, the
ground truth and extra info; this module sends them to the harness's reward endpoint, which
computes the reward with the same code as `harness train` (retrievers, SQL sandbox, the
paper's reward tiers), and returns the reward. Nothing is computed here.

Use in a verl config (see scripts/verl/README.md):
    custom_reward_function.path=scripts/verl/harness_reward.py
    custom_reward_function.name=compute_score          # one response per call
    # or compute_score_batch with reward_model.reward_manager=batch (one request per batch)

Environment: HARNESS_REWARD_URL (default http://127.0.0.1:8001/reward),
HARNESS_REWARD_TIMEOUT (seconds per request, default 300). Standard library only.
"""
import json
import os
import urllib.request

URL = os.environ.get("HARNESS_REWARD_URL", "http://127.0.0.1:8001/reward")
TIMEOUT = float(os.environ.get("HARNESS_REWARD_TIMEOUT", "300"))


def _plain(value):
    """Parquet rows reach verl as numpy arrays and scalars: JSON wants lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def compute_score_details(data_sources, solution_strs, ground_truths, extra_infos=None):
    """Rewards and their parts (score, metric, outcome, format_ok) of a batch, in order.
    An item the endpoint cannot score raises: a reward is never guessed."""
    extra_infos = extra_infos if extra_infos is not None else [None] * len(data_sources)
    items = [
        {"data_source": d, "solution_str": s, "ground_truth": _plain(g), "extra_info": _plain(e) or {}}
        for d, s, g, e in zip(data_sources, solution_strs, ground_truths, extra_infos)
    ]
    body = json.dumps({"items": items}).encode("utf-8")
    request = urllib.request.Request(URL, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            rewards = json.loads(response.read())["rewards"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"harness reward endpoint {URL}: HTTP {e.code}: {e.read().decode('utf-8', 'replace')}") from None
    for item, reward in zip(items, rewards):
        if reward.get("score") is None:
            raise RuntimeError(f"harness reward endpoint: {item['data_source']}: {reward.get('error')}")
    return rewards


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **_):
    """verl's per-response custom reward function: the paper's reward as a float."""
    return compute_score_details([data_source], [solution_str], [ground_truth], [extra_info])[0]["score"]


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **_):
    """verl's batch reward manager form: one HTTP request per batch."""
    return [r["score"] for r in compute_score_details(data_sources, solution_strs, ground_truths, extra_infos)]
