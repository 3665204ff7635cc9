from animator.cli import main

main(prog_name="animator")
