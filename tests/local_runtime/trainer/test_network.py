import torch

from local_runtime.trainer.network import ServingGraph, SmallVgg
from local_runtime.trainer.train import fit_temperature
from tests.builders import threshold_between


def _members(n):
    torch.manual_seed(0)
    return [SmallVgg(2, width=4).eval() for _ in range(n)]


def test_graph_averages_probabilities_over_members_and_mirrors():
    members, x = _members(2), torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(v), dim=1) for m in members for v in (x, x.flip(3))]).mean(dim=0)
        assert torch.allclose(ServingGraph(members, flip=True, average="probabilities")(x), expected, atol=1e-6)
        assert torch.allclose(ServingGraph(members[:1], flip=False)(x), torch.softmax(members[0](x), dim=1), atol=1e-6)


def test_graph_averages_logits_by_default():
    members, x = _members(3), torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = torch.stack([m(x) for m in members])
        by_logits = ServingGraph(members, flip=False)(x)
        assert torch.allclose(by_logits, torch.softmax(logits.mean(dim=0), dim=1), atol=1e-6)
        by_probabilities = ServingGraph(members, flip=False, average="probabilities")(x)
        assert not torch.allclose(by_logits, by_probabilities)


def test_temperature_divides_every_views_logits():
    members, x = _members(1), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = members[0](x)
        assert torch.allclose(ServingGraph(members, flip=False, temperature=2.0)(x), torch.softmax(logits / 2, dim=1),
                              atol=1e-6)


def test_fitted_temperature_recovers_the_one_that_made_the_labels():
    torch.manual_seed(1)
    logits = torch.randn(4000, 2) * 4
    labels = torch.multinomial(torch.softmax(logits / 2.0, dim=1), 1).squeeze(1)
    assert abs(fit_temperature(logits.unsqueeze(0), labels) - 2.0) < 0.2


def test_ema_follows_the_weights_early_and_averages_late():
    from local_runtime.trainer.train import _ema_with_warmup

    average = _ema_with_warmup(0.99)
    early = average(torch.zeros(1), torch.ones(1), torch.tensor(0))
    late = average(torch.zeros(1), torch.ones(1), torch.tensor(100_000))
    assert torch.allclose(early, torch.tensor([0.9])) and torch.allclose(late, torch.tensor([0.01]))


def test_the_probe_takes_its_weight_of_the_blend():
    members, x = _members(2), torch.randn(4, 3, 32, 32)
    probe = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    with torch.no_grad():
        members_logits = torch.stack([m(x) for m in members]).mean(dim=0)
        blended = ServingGraph(members, flip=False, probe=probe, probe_weight=0.25)(x)
        assert torch.allclose(blended, torch.softmax(0.75 * members_logits + 0.25 * probe(x), dim=1), atol=1e-6)
        by_probabilities = ServingGraph(members, flip=False, average="probabilities", probe=probe, probe_weight=0.25,
                                        temperature=2.0)(x)
        members_probabilities = torch.stack([torch.softmax(m(x) / 2, dim=1) for m in members]).mean(dim=0)
        expected = 0.75 * members_probabilities + 0.25 * torch.softmax(probe(x) / 2, dim=1)
        assert torch.allclose(by_probabilities, expected, atol=1e-6)


def _confidence_split(members, x):
    """A skip confidence that half the images reach with the members alone."""
    with torch.no_grad():
        confidence = ServingGraph(members, flip=False)(x).max(dim=1).values
    return float(confidence.median())


def test_images_the_members_are_sure_of_skip_the_probe():
    members, x = _members(2), torch.randn(8, 3, 32, 32)
    probe = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    skip = _confidence_split(members, x)
    with torch.no_grad():
        members_only = ServingGraph(members, flip=False)(x)
        blended = ServingGraph(members, flip=False, probe=probe, probe_weight=0.5)(x)
        cascaded = ServingGraph(members, flip=False, probe=probe, probe_weight=0.5, skip_confidence=skip)(x)
    sure = members_only.max(dim=1).values >= skip
    assert 0 < int(sure.sum()) < len(x)
    assert torch.equal(cascaded[sure], members_only[sure]) and torch.equal(cascaded[~sure], blended[~sure])
    assert not torch.allclose(members_only[~sure], blended[~sure])


def test_images_the_first_member_is_sure_of_get_its_answer_and_skip_the_other_stages():
    members, x = _members(3), torch.randn(12, 3, 32, 32)
    probe = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    with torch.no_grad():
        first_only = ServingGraph(members[:1], flip=True)(x)
        early = threshold_between(first_only.max(dim=1).values, len(x) // 2)
        for later in ({}, {"probe": probe, "probe_weight": 0.5},
                      {"probe": probe, "probe_weight": 0.5, "skip_confidence": 0.9}):
            without = ServingGraph(members, flip=True, **later)(x)
            graph = ServingGraph(members, flip=True, early_confidence=early, **later)
            exits = first_only.max(dim=1).values >= early
            assert 0 < int(exits.sum()) < len(x)
            assert torch.equal(graph(x)[exits], first_only[exits]) and torch.equal(graph(x)[~exits], without[~exits])
            assert graph.stages[0] == "the first member alone"


def test_the_stages_are_named_in_order_and_one_member_has_no_early_exit():
    members = _members(3)
    probe = torch.nn.Linear(1, 2)
    assert ServingGraph(members, flip=False, probe=probe, probe_weight=0.5, skip_confidence=0.98,
                        early_confidence=0.998).stages == [
        "the first member alone", "3 members", "3 members + the ImageNet probe"]
    assert ServingGraph(members, flip=False, probe=probe, probe_weight=0.5).stages == ["3 members + the ImageNet probe"]
    assert ServingGraph(members, flip=False, early_confidence=0.998).stages == ["the first member alone", "3 members"]
    single = ServingGraph(members[:1], flip=False, early_confidence=0.5)
    assert not single.exits_early and single.stages == ["1 member"]
