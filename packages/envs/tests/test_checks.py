"""check_env fails, with a useful message, on each kind of broken env."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mmsa_envs import DummyEnv, Step, check_env


class _Broken(DummyEnv):
    """A dummy env with one defect, chosen by name."""

    def __init__(self, defect: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.defect = defect
        self._resets = 0
        if defect == "padding":
            self.spec = dataclasses.replace(self.spec, agent_obs_dims=(7, 5, 7))

    def _reset(self, seed: int | None) -> Step:
        step = super()._reset(seed)
        self._resets += 1
        if self.defect == "ignores_seed":  # every reset differs, whatever the seed
            self._offset = self._resets
            step = self._observe(0.0, False, False)
        if self.defect == "reset_reward":
            step = dataclasses.replace(step, reward=1.0)
        return step

    def _step(self, actions: np.ndarray) -> Step:
        step = super()._step(actions)
        if self.defect == "float64_obs":
            step = dataclasses.replace(step, obs=step.obs.astype(np.float64))
        if self.defect == "state_shape":
            step = dataclasses.replace(step, state=step.state[:-1])
        if self.defect == "never_ends":
            step = dataclasses.replace(step, truncated=False, terminated=False)
        if self.defect == "both_ends" and step.done:
            step = dataclasses.replace(step, truncated=True, terminated=True)
        if self.defect == "early_truncation" and self._time == 2:
            step = dataclasses.replace(step, truncated=True, terminated=False)
        if self.defect == "no_avail" and not step.done:
            avail = step.avail_actions.copy()
            avail[1] = False
            step = dataclasses.replace(step, avail_actions=avail)
        if self.defect == "no_win_flag":
            self.spec = dataclasses.replace(self.spec, has_win=True)
        return step

    def validate_actions(self, actions: object) -> np.ndarray:
        if self.defect == "accepts_anything":
            return np.asarray(actions)
        if self.defect == "vague_error":
            arr = np.asarray(actions)
            if arr.shape != (3,) or arr.dtype.kind != "i" or (arr < 0).any() or (arr > 5).any():
                raise ValueError("bad actions")
        if self.defect == "corrupts_on_error":
            self._offset += 1  # mutates state, then rejects
        return super().validate_actions(actions)

    def step(self, actions: object) -> Step:
        if self.defect == "step_after_end" and self._needs_reset:
            self._needs_reset = False
        return super().step(actions)


@pytest.mark.parametrize(
    ("defect", "needle"),
    [
        ("float64_obs", "obs dtype float64"),
        ("state_shape", "state shape (10,)"),
        ("padding", "agent 1 obs beyond its true size 5"),
        ("ignores_seed", "replay with the same seed"),
        ("reset_reward", "reward after reset must be 0"),
        ("never_ends", "episode not over at episode_limit=5"),
        ("both_ends", "terminated and truncated both set"),
        ("early_truncation", "truncated before the time limit"),
        ("no_avail", "agent 1 has no action"),
        ("no_win_flag", "battle_won"),
        ("accepts_anything", "must raise ValueError"),
        ("vague_error", "must mention"),
        ("corrupts_on_error", "replay with the same seed"),
        ("step_after_end", "after the episode ended must raise"),
    ],
)
def test_check_env_catches(defect: str, needle: str) -> None:
    kw = {"terminate_after": 0} if defect == "early_truncation" else {}
    with pytest.raises(AssertionError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_env(_Broken(defect, **kw))


def test_check_env_accepts_a_correct_env() -> None:
    check_env(_Broken("none"), episodes=3, seed=5)


def test_check_env_catches_continuous_bound_defect() -> None:
    env = _Broken("accepts_anything", action_kind="continuous")
    with pytest.raises(AssertionError, match="above bounds must raise ValueError"):
        check_env(env)
