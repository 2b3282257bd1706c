import sys

from modelstore.pretrain.encoder import main

sys.exit(main())
