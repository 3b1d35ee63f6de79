"""Deploy to staging: move the registry alias `staging` to the approved version."""


def run(ctx) -> dict:
    version = ctx.upstream("cd_full_train")["model_version"]
    approval = ctx.upstream("manual_approval")
    previous = ctx.move_alias(ctx.params["alias"], version, f"approved by {approval['by']}", by=approval["by"])
    return {"alias": ctx.params["alias"], "version": version, "previous": previous}
