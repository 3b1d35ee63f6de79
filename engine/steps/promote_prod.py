"""Promote: move `champion` to the version; the previous champion is recorded so rollback can restore it.

Only the version this run trained and shadow-tested itself: with several workers, another run's deployment may
have moved @staging in between, and a version promoted on someone else's shadow test was never tested."""


def run(ctx) -> dict:
    version = ctx.upstream("cd_full_train")["model_version"]
    tested = ctx.upstream("shadow_monitor").get("tested_version")
    if tested != version:
        raise RuntimeError(f"refusing to promote version {version}: this run's shadow test scored "
                           f"{'version ' + str(tested) if tested is not None else 'no version of its own'}; retry "
                           "from shadow_monitor so that the version itself is shadow-tested")
    approval = ctx.upstream("manual_approval")
    # The tags go in the same all-or-nothing move as the alias: a failure leaves neither.
    previous = ctx.move_alias("champion", version, f"run {ctx.run.id} passed shadow monitoring of version "
                              f"{version}; approved by {approval['by']}", by=approval["by"],
                              tags=lambda previous: {"promoted_by_run": str(ctx.run.id),
                                                     "previous_champion": str(previous or "")})
    return {"alias": "champion", "version": version, "shadow_tested_version": tested, "previous_champion": previous}
