# seeds/003 (Adam Bard): a class instance with __call__ (a generator).
class Application(object):
    def __call__(self, environ, start_fn):
        start_fn('200 OK', [('Content-Type', 'text/plain')])
        yield b"Hello World!\n"

app = Application()
