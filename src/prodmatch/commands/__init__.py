"""The `prodmatch` sub-commands, one module per part: the task seam's commands (synth, check, folds,
run, leaderboard), Shopee's stages, the pair stages (ccks, pairs), KDD; `_base` holds the command
registry and the flag types they share. `prodmatch.cli` imports them (registering each) and runs one."""
