from dupfind.cli import main

if __name__ == "__main__":  # not when a spawned child process (the int8 build) imports this module
    main()
