import struct
def s(x): b=x.encode(); return struct.pack('<Q',len(b))+b
def kv_u32(k,v): return s(k)+struct.pack('<I',4)+struct.pack('<I',v)
def kv_str(k,v): return s(k)+struct.pack('<I',8)+s(v)
def kv_arr_str(k,vs): return s(k)+struct.pack('<I',9)+struct.pack('<I',8)+struct.pack('<Q',len(vs))+b''.join(s(v) for v in vs)
def gguf(kvs, tensors):
    out=b'GGUF'+struct.pack('<I',3)+struct.pack('<Q',len(tensors))+struct.pack('<Q',len(kvs))+b''.join(kvs)
    for name,dims,dtype,off in tensors:
        out+=s(name)+struct.pack('<I',len(dims))+b''.join(struct.pack('<Q',d) for d in dims)+struct.pack('<I',dtype)+struct.pack('<Q',off)
    out+=b'\0'*((-len(out))%32)
    return out+b'\0'*64
open('alignment-zero.gguf','wb').write(gguf([kv_str('general.architecture','llama'),kv_u32('general.alignment',0)],[]))
tokens=['h','e','l','o','he']
base=[kv_str('general.architecture','llama'),kv_u32('llama.embedding_length',4),kv_u32('llama.attention.head_count',2),
 kv_u32('llama.attention.head_count_kv',1),kv_u32('llama.block_count',1),kv_u32('llama.feed_forward_length',8),
 kv_str('tokenizer.ggml.model','gpt2'),kv_arr_str('tokenizer.ggml.tokens',tokens),kv_arr_str('tokenizer.ggml.merges',['h e'])]
# token_embd: GGUF dims are innermost first: [hidden, vocab]
open('huge-embeddings.gguf','wb').write(gguf(base,[('token_embd.weight',[4,1<<32],0,0)]))
open('overflowing-embeddings.gguf','wb').write(gguf(base,[('token_embd.weight',[1<<33,1<<33],0,0)]))
