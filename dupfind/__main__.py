from dupfind.cli import main

main()
