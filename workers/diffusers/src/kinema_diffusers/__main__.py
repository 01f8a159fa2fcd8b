from kinema_diffusers.cli import main

raise SystemExit(main())
