"""`python -m rl.doctor [+exp=NAME] [overrides]`: can this experiment start on this machine? (see __main__.py)"""
