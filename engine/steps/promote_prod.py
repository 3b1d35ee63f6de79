"""Promote: move `champion` to the version; the previous champion is recorded so rollback can restore it."""


def run(ctx) -> dict:
    version = ctx.upstream("cd_full_train")["model_version"]
    approval = ctx.upstream("manual_approval")
    # The tags go in the same all-or-nothing move as the alias: a failure leaves neither.
    previous = ctx.move_alias("champion", version, f"run {ctx.run['id']} passed shadow monitoring; "
                              f"approved by {approval['by']}", by=approval["by"],
                              tags=lambda previous: {"promoted_by_run": str(ctx.run["id"]),
                                                     "previous_champion": str(previous or "")})
    return {"alias": "champion", "version": version, "previous_champion": previous}
