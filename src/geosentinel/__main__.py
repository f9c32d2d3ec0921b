from geosentinel.cli import main

main()
