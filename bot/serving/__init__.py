"""Serving the models: the generation worker and its lanes, the jobs it takes, where it runs (in process or on
Celery workers), the model store on disk, fine-tunes in a child process, and the singer's process pool. Nothing
here knows of Telegram or of the services that call it."""
