import sys

from webtext.cli import main

sys.exit(main())
